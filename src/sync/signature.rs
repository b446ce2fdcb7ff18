//! Request signatures between the services: the Standard Webhooks scheme.
//!
//! `webhook-signature` is `v1,` + base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}")),
//! several space-separated signatures allowed. The secret's UTF-8 bytes are
//! the key (docs/API.md §7.1). Verification accepts any of several secrets, so a
//! secret can be rotated without downtime: deploy new+old on both sides,
//! then make the new one first (it signs), then drop the old.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// How far a request's timestamp may be from our clock, either way.
pub const TOLERANCE_SECS: i64 = 300;
/// Longest accepted `webhook-id`.
pub const MAX_WEBHOOK_ID: usize = 200;

/// The shared secrets of one service: the first signs, all verify.
#[derive(Clone)]
pub struct Secrets(Vec<Vec<u8>>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret, not even in debug output.
        write!(f, "Secrets({} redacted)", self.0.len())
    }
}

impl Secrets {
    /// `None` when there is no non-empty secret.
    pub fn new<S: AsRef<str>>(secrets: &[S]) -> Option<Secrets> {
        let v: Vec<Vec<u8>> = secrets
            .iter()
            .map(|s| s.as_ref().as_bytes().to_vec())
            .filter(|s| !s.is_empty())
            .collect();
        (!v.is_empty()).then_some(Secrets(v))
    }

    fn mac(key: &[u8], id: &str, ts: i64, body: &[u8]) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(ts.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// The `webhook-signature` header value for a request.
    pub fn sign(&self, id: &str, ts: i64, body: &[u8]) -> String {
        format!(
            "v1,{}",
            STANDARD.encode(Self::mac(&self.0[0], id, ts, body))
        )
    }

    /// Checks a request's headers against its body at time `now` (Unix seconds).
    pub fn verify(
        &self,
        id: Option<&str>,
        ts: Option<&str>,
        sig: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), SignatureError> {
        let id = id
            .filter(|s| !s.is_empty() && s.len() <= MAX_WEBHOOK_ID)
            .ok_or(SignatureError::Missing(HEADER_ID))?;
        let ts = ts.ok_or(SignatureError::Missing(HEADER_TIMESTAMP))?;
        let sig = sig.ok_or(SignatureError::Missing(HEADER_SIGNATURE))?;
        let ts: i64 = ts
            .trim()
            .parse()
            .map_err(|_| SignatureError::BadTimestamp)?;
        // `abs_diff`: a timestamp near i64::MIN must not overflow.
        if now.abs_diff(ts) > TOLERANCE_SECS.unsigned_abs() {
            return Err(SignatureError::OutsideTolerance);
        }
        let expected: Vec<[u8; 32]> = self.0.iter().map(|k| Self::mac(k, id, ts, body)).collect();
        let mut ok = subtle::Choice::from(0);
        for candidate in sig.split_whitespace() {
            let Some(b64) = candidate.strip_prefix("v1,") else {
                continue;
            };
            let Ok(given) = STANDARD.decode(b64) else {
                continue;
            };
            for e in &expected {
                ok |= e.as_slice().ct_eq(&given);
            }
        }
        if bool::from(ok) {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing header {0}")]
    Missing(&'static str),
    #[error("webhook-timestamp is not a Unix time in seconds")]
    BadTimestamp,
    #[error(
        "webhook-timestamp is more than 300 seconds away from the receiver's clock; check both clocks"
    )]
    OutsideTolerance,
    #[error("no valid signature; do both services use the same --sync-secret?")]
    Mismatch,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(s: &[&str]) -> Secrets {
        Secrets::new(s).unwrap_or_else(|| panic!("no secret"))
    }

    #[test]
    fn round_trip_and_tamper() {
        let s = secrets(&["k1"]);
        let sig = s.sign("msg_1", 1000, b"{}");
        assert!(sig.starts_with("v1,"));
        assert_eq!(
            s.verify(Some("msg_1"), Some("1000"), Some(&sig), b"{}", 1000),
            Ok(())
        );
        assert_eq!(
            s.verify(Some("msg_1"), Some("1000"), Some(&sig), b"{ }", 1000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            s.verify(Some("msg_2"), Some("1000"), Some(&sig), b"{}", 1000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            secrets(&["k2"]).verify(Some("msg_1"), Some("1000"), Some(&sig), b"{}", 1000),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn timestamp_tolerance_both_ways() {
        let s = secrets(&["k"]);
        let sig = s.sign("i", 1000, b"x");
        assert!(
            s.verify(Some("i"), Some("1000"), Some(&sig), b"x", 1300)
                .is_ok()
        );
        assert_eq!(
            s.verify(Some("i"), Some("1000"), Some(&sig), b"x", 1301),
            Err(SignatureError::OutsideTolerance)
        );
        assert_eq!(
            s.verify(Some("i"), Some("1000"), Some(&sig), b"x", 699),
            Err(SignatureError::OutsideTolerance)
        );
        assert_eq!(
            s.verify(Some("i"), Some("soon"), Some(&sig), b"x", 1000),
            Err(SignatureError::BadTimestamp)
        );
        for far in [i64::MIN, i64::MIN + 1, i64::MAX] {
            assert_eq!(
                s.verify(Some("i"), Some(&far.to_string()), Some(&sig), b"x", 1000),
                Err(SignatureError::OutsideTolerance),
                "{far}"
            );
        }
        assert_eq!(
            s.verify(None, Some("1000"), Some(&sig), b"x", 1000),
            Err(SignatureError::Missing(HEADER_ID))
        );
    }

    #[test]
    fn rotation_accepts_old_and_new() {
        let old = secrets(&["old"]);
        let new = secrets(&["new"]);
        let both = secrets(&["new", "old"]);
        for signer in [&old, &new] {
            let sig = signer.sign("i", 5, b"b");
            assert!(
                both.verify(Some("i"), Some("5"), Some(&sig), b"b", 5)
                    .is_ok()
            );
        }
        // Several signatures in one header: any valid one is enough.
        let multi = format!("v1,AAAA {}", new.sign("i", 5, b"b"));
        assert!(
            new.verify(Some("i"), Some("5"), Some(&multi), b"b", 5)
                .is_ok()
        );
        assert!(format!("{both:?}").contains("redacted"));
    }
}

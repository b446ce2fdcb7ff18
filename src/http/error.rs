//! The one HTTP error type. Every error answer is built here, as an RFC 9457
//! problem+json body: `{"type", "title", "status", "detail", "errors"}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::FieldError;
use crate::engine::EngineError;
use crate::storage::{ErrorKind, StorageError};
use crate::telemetry::Throttle;
use metrics::Counter;

#[derive(Debug)]
pub enum ApiError {
    /// 400: the request cannot be read at all (malformed JSON, bad query).
    BadRequest(String),
    /// 400 naming the part of the request that is unreadable (a path id).
    BadField(FieldError),
    /// 401: missing or invalid credentials.
    Unauthorized(String),
    NotFound(String),
    /// 405 with the methods that are allowed.
    MethodNotAllowed {
        detail: String,
        allow: Option<String>,
    },
    /// 409: not allowed in the order's current state.
    Conflict(String),
    PayloadTooLarge,
    UnsupportedMediaType,
    /// 422: readable, but invalid values; every bad field listed.
    Invalid {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 408: the request took longer than the service allows.
    Timeout,
    /// 500/503: our fault; the detail never carries internals.
    Internal,
    /// 503 with `Retry-After`, for a reason given in the detail.
    Unavailable(String),
    /// 503 with `Retry-After`: the database is down, unreachable or does
    /// not answer in time. One status and one message, whatever the path.
    DatabaseUnavailable,
    /// 507: the database's disk is full; nothing was written.
    StorageFull,
}

/// `Retry-After` (seconds) of every 503.
pub const RETRY_AFTER_SECS: u64 = 2;

/// The detail of every answer for an unreachable database.
pub const DATABASE_UNAVAILABLE: &str = "the database cannot be reached or does not answer in time; nothing was changed. Retry in a few seconds (see Retry-After); if this goes on, check that the database is running and reachable";

/// The detail of every answer for a write that found the disk full.
pub const STORAGE_FULL: &str = "the database's disk is full; nothing was written. Free space on the database volume, then retry";

/// The detail of a request whose text the database cannot store.
pub const UNSTORABLE: &str = "the request holds text the database cannot store (a NUL character, or one outside the database's encoding); nothing was changed. Remove that character and retry";

/// RFC 9457 problem details: the body of every error answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    #[serde(rename = "type")]
    #[schema(
        format = "uri",
        example = "https://fulfillment.invalid/problems/validation"
    )]
    pub kind: &'a str,
    #[schema(example = "Invalid request")]
    pub title: &'a str,
    #[schema(example = 422)]
    pub status: u16,
    pub detail: &'a str,
    /// Every invalid field of a 422 (the unreadable part of some 400s);
    /// empty otherwise.
    pub errors: &'a [FieldError],
}

impl ApiError {
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let detail = match errors.len() {
            1 => format!("{} {}", errors[0].field, errors[0].message),
            n => format!("{n} fields are invalid; see errors"),
        };
        ApiError::Invalid { detail, errors }
    }

    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::invalid(vec![FieldError::new(field, message)])
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) | ApiError::BadField(_) => {
                (StatusCode::BAD_REQUEST, "bad-request", "Bad request")
            }
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            ApiError::MethodNotAllowed { .. } => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
            ),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            ApiError::Invalid { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Invalid request",
            ),
            ApiError::Timeout => (StatusCode::REQUEST_TIMEOUT, "timeout", "Request timeout"),
            ApiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
            ),
            ApiError::Unavailable(_) | ApiError::DatabaseUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            ApiError::StorageFull => (
                StatusCode::INSUFFICIENT_STORAGE,
                "storage-full",
                "Insufficient storage",
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, title) = self.parts();
        let detail: &str = match &self {
            ApiError::BadRequest(d)
            | ApiError::Unauthorized(d)
            | ApiError::NotFound(d)
            | ApiError::Conflict(d)
            | ApiError::Unavailable(d) => d,
            ApiError::MethodNotAllowed { detail, .. } => detail,
            ApiError::Invalid { detail, .. } => detail,
            ApiError::BadField(e) => &e.message,
            ApiError::PayloadTooLarge => "the request body is larger than 1 MiB",
            ApiError::UnsupportedMediaType => {
                "send the body as JSON with Content-Type: application/json"
            }
            ApiError::DatabaseUnavailable => DATABASE_UNAVAILABLE,
            ApiError::StorageFull => STORAGE_FULL,
            ApiError::Internal => {
                "something went wrong on our side; the request was not applied, try again"
            }
            ApiError::Timeout => {
                "the request took too long and was abandoned; it may have been applied, so check before retrying (a create can be retried safely with the same Idempotency-Key)"
            }
        };
        let errors: &[FieldError] = match &self {
            ApiError::Invalid { errors, .. } => errors,
            ApiError::BadField(e) => std::slice::from_ref(e),
            _ => &[],
        };
        let type_uri = format!("https://fulfillment.invalid/problems/{kind}");
        let body = serde_json::to_vec(&Problem {
            kind: &type_uri,
            title,
            status: status.as_u16(),
            detail,
            errors,
        })
        .unwrap_or_default();
        let mut res = (status, body).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match &self {
            ApiError::MethodNotAllowed {
                allow: Some(allow), ..
            } => {
                if let Ok(v) = HeaderValue::from_str(allow) {
                    h.insert(header::ALLOW, v);
                }
            }
            ApiError::Unauthorized(_) => {
                h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::Unavailable(_) | ApiError::DatabaseUnavailable => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            }
            _ => {}
        }
        res
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::NotFound(id) => ApiError::NotFound(format!("no order with id {id}")),
            EngineError::UnknownWarehouse(name) => ApiError::NotFound(format!(
                "no warehouse named {name:?}; GET /api/v1/warehouses lists them"
            )),
            EngineError::UnknownHold(h) => ApiError::NotFound(format!(
                "this order has no hold {h}; GET the order to see its holds"
            )),
            EngineError::Conflict(m) => ApiError::Conflict(m),
            EngineError::Invalid(errors) => ApiError::invalid(errors),
            EngineError::WrongRole(e) => ApiError::MethodNotAllowed {
                detail: format!("not allowed on this side: {e}"),
                allow: None,
            },
            EngineError::IdempotencyKeyReused => ApiError::field(
                "Idempotency-Key",
                EngineError::IdempotencyKeyReused.to_string(),
            ),
            EngineError::Storage(s) => s.into(),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e.kind() {
            ErrorKind::Unavailable => {
                // During an outage every request meets this: one line now,
                // then a count every interval.
                const WHAT: &str = "answered 503: the database cannot be reached; check that it is running and reachable";
                if STORAGE_WARNINGS.note("unavailable", &Counter::noop(), WHAT) {
                    tracing::warn!(error = %e, "{WHAT}");
                }
                ApiError::DatabaseUnavailable
            }
            ErrorKind::Full => {
                const WHAT: &str =
                    "answered 507: the database's disk is full; free space on the database volume";
                if STORAGE_WARNINGS.note("full", &Counter::noop(), WHAT) {
                    tracing::error!(error = %e, "{WHAT}");
                }
                ApiError::StorageFull
            }
            ErrorKind::Unstorable => {
                tracing::warn!(error = %e, "answered 400: the request holds text the database cannot store");
                ApiError::BadRequest(UNSTORABLE.into())
            }
            ErrorKind::Other => {
                tracing::error!(error = %e, "storage error");
                ApiError::Internal
            }
        }
    }
}

/// Limits the warnings of [`From<StorageError>`] (process-wide).
static STORAGE_WARNINGS: std::sync::LazyLock<Throttle> =
    std::sync::LazyLock::new(Throttle::default);

pub type ApiResult<T> = Result<T, ApiError>;

//! Request extractors: JSON bodies with problem+json rejections, bearer
//! token authentication, and order ids from the path.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::{StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;
use crate::domain::{Actor, FieldError, OrderId};

/// A JSON body parsed into `T`, keeping the bytes (for idempotency hashes).
pub struct ApiJson<T> {
    pub value: T,
    pub body: Bytes,
}

pub fn is_json(ct: &str) -> bool {
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Reads the body as bytes, mapping "too large" to 413.
pub async fn body_bytes(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest(format!("could not read the request body: {e}"))
        }
    })
}

/// Parses JSON bytes: 400 when not JSON at all, 422 naming the field when
/// the JSON does not fit `T`. One pass straight into `T` (no intermediate
/// `serde_json::Value`: for a sync batch that was most of the parsing).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let not_json = |e: &dyn std::fmt::Display| {
        ApiError::BadRequest(format!("the body is not valid JSON: {e}"))
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(&mut de) {
        // Anything after the value (but white space) is not JSON either.
        Ok(v) => de.end().map(|()| v).map_err(|e| not_json(&e)),
        Err(e) if !e.inner().is_data() => Err(not_json(e.inner())),
        Err(e) => {
            // The body may not fit `T` and also be broken further on (or
            // nested deeper than the parser allows, which `IgnoredAny` would
            // not notice): not being JSON at all is the answer then.
            if let Err(syntax) = serde_json::from_slice::<serde_json::Value>(bytes) {
                return Err(not_json(&syntax));
            }
            let path = e.path().to_string();
            let field = if path == "." { "body".to_owned() } else { path };
            let message = e.into_inner().to_string();
            Err(ApiError::invalid(vec![FieldError::new(field, message)]))
        }
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_json(ct) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let body = body_bytes(req, state).await?;
        let value = parse_json(&body)?;
        Ok(ApiJson { value, body })
    }
}

/// A JSON body that may be left out: `None` when the body is empty (or
/// only white space), whatever its `Content-Type`; otherwise the body read
/// like [`ApiJson`] (415 when not sent as JSON, 400 when not JSON, 422
/// when it does not fit `T`).
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned> FromRequest<AppState> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = body_bytes(req, state).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        if !is_json(&ct) {
            return Err(ApiError::UnsupportedMediaType);
        }
        parse_json(&body).map(|v| OptionalJson(Some(v)))
    }
}

/// The address a request came from (the TCP peer), when the server knows
/// it: the service's accept loop records it on every request. Behind a
/// reverse proxy this is the proxy's address.
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// The authenticated API client. Extracting it is the authentication.
pub struct Caller {
    /// Who it is in the audit trail (its token's name).
    pub actor: Actor,
    /// Whose `Idempotency-Key`s it uses: its token's, by id (two tokens may
    /// share a name).
    pub key_scope: String,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::Unauthorized("send an API token as Authorization: Bearer TOKEN".into())
            })?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 512)
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header must be Bearer TOKEN".into())
            })?;
        // The lookup is by hash, so the comparison never touches the token
        // itself and takes the same time whatever its prefix.
        match state.engine.api_token(token).await? {
            Some(t) => Ok(Caller {
                key_scope: format!("token:{}", t.id),
                actor: Actor::Token(t.name),
            }),
            None => Err(ApiError::Unauthorized(
                "unknown or revoked API token; create one with `fulfillment token create`".into(),
            )),
        }
    }
}

/// The order id and hold id of `/orders/{id}/holds/{hold_id}/...`: 400
/// naming the one that is not a UUID.
pub struct HoldPath(pub OrderId, pub uuid::Uuid);

impl FromRequestParts<AppState> for HoldPath {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match Path::<(String, String)>::from_request_parts(parts, state).await {
            Ok(Path((raw, hold))) => {
                let id = order_id(&raw)?;
                let hold = uuid::Uuid::parse_str(&hold).map_err(|_| {
                    ApiError::BadField(FieldError::new(
                        "hold_id",
                        format!("{hold:?} is not a hold id (a UUID)"),
                    ))
                })?;
                Ok(HoldPath(id, hold))
            }
            Err(e) => Err(ApiError::BadField(FieldError::new(
                "id",
                format!("is not an order and hold id: {}", e.body_text()),
            ))),
        }
    }
}

/// Parses an order id from the path: 400 when it is not a UUID.
pub fn order_id(raw: &str) -> Result<OrderId, ApiError> {
    OrderId::parse(raw).ok_or_else(|| {
        ApiError::BadField(FieldError::new(
            "id",
            format!("{raw:?} is not an order id (a UUID)"),
        ))
    })
}

/// The order id of an `/orders/{id}/...` route. Every way the segment can be
/// wrong (not a UUID, or percent-encoded bytes that are not even UTF-8) is a
/// 400 problem+json naming `id`; axum's own rejection would be plain text.
pub struct OrderPath(pub OrderId);

impl FromRequestParts<AppState> for OrderPath {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(raw)) => order_id(&raw).map(OrderPath),
            Err(e) => Err(ApiError::BadField(FieldError::new(
                "id",
                format!("is not an order id (a UUID): {}", e.body_text()),
            ))),
        }
    }
}

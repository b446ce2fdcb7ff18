//! The HTTP layer: the REST API (`/api/v1`), the signed sync endpoint, the
//! admin web UI (`/admin`) and the operational endpoints, on one axum router
//! per service.

pub mod admin;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod ops;
pub mod orders;
pub mod routes;
pub mod sync;
pub mod views;
pub mod warehouses;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower_http::trace::TraceLayer;

use crate::config::{defaults, parse_duration};
use crate::engine::Engine;
use crate::sync::peers::Peers;
use crate::sync::reconcile::Reconciler;
use error::ApiError;

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// Longest a request may take before it is answered 408, reading its body
/// included. `FULFILLMENT_REQUEST_TIMEOUT` overrides it (see
/// [`request_timeout`]).
pub const REQUEST_TIMEOUT: Duration = defaults::HTTP_REQUEST_TIMEOUT;

/// The request timeout in force: [`REQUEST_TIMEOUT`], or the environment
/// variable `FULFILLMENT_REQUEST_TIMEOUT` (a duration as every setting
/// takes it: `2`, `2s`, `2500ms`), read once per router. Meant for tests
/// that check a slow client is cut off without waiting 30 s; an unreadable
/// or zero value is ignored with a warning.
pub fn request_timeout() -> Duration {
    let Ok(raw) = std::env::var("FULFILLMENT_REQUEST_TIMEOUT") else {
        return REQUEST_TIMEOUT;
    };
    match parse_duration(&raw) {
        Ok(d) if !d.is_zero() => d,
        _ => {
            tracing::warn!(
                value = %raw,
                "FULFILLMENT_REQUEST_TIMEOUT is not a duration like 30, 30s or 500ms; using 30s"
            );
            REQUEST_TIMEOUT
        }
    }
}

/// Everything a handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    /// The peers this service syncs with: their secrets (who signed a
    /// request) and breakers.
    pub peers: Arc<Peers>,
    pub reconciler: Arc<Reconciler>,
}

/// One side's API routes (`/api/v1/**`, `/healthz`, `/readyz`,
/// `/metrics`), each with its OpenAPI documentation: the router serves
/// them and [`openapi::document`] is made from them.
pub fn api(role: crate::domain::Role) -> routes::Api {
    let api = routes::Api::new(role);
    let api = orders::routes(api);
    let api = sync::routes(api);
    let api = warehouses::routes(api);
    ops::routes(api)
}

pub fn router(state: AppState) -> Router {
    let (api, _) = api(state.engine.role()).split();
    Router::new()
        .merge(api)
        .merge(admin::router(state.clone()))
        .fallback(|| async {
            ApiError::NotFound("no such route; see /api/v1/openapi.json or docs/API.md in the fulfillment repository".into())
        })
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed {
                detail: "this route does not take that method".into(),
                allow: None,
            }
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::time_requests,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            request_timeout(),
            time_limit,
        ))
        // 5xx answers are logged where they arise, throttled when they
        // can repeat (an unreachable database); one more line per failed
        // request here would undo that.
        .layer(
            TraceLayer::new_for_http().on_failure(
                tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG),
            ),
        )
        .with_state(state)
}

/// Answers 408 (problem+json) when a request runs past the request timeout
/// ([`request_timeout`]), so a slow client or a stuck dependency cannot hold
/// a worker forever.
async fn time_limit(
    axum::extract::State(limit): axum::extract::State<Duration>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout.into_response(),
    }
}

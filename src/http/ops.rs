//! Operational endpoints: liveness, readiness and Prometheus metrics, and
//! the middleware that times every request.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa_axum::routes;

use super::AppState;
use super::error::ApiError;
use super::extract::Caller;
use super::openapi::{Bearer, NotReady, Timeout};
use super::routes::Api;
use crate::sync::signature::SignatureError;

/// The operational routes, and this side's OpenAPI document.
pub fn routes(api: Api) -> Api {
    api.serve(routes!(healthz))
        .serve(routes!(readyz))
        .serve(routes!(metrics))
        .serve(routes!(openapi_json))
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "ops",
    operation_id = "healthz",
    summary = "Liveness",
    description = "Answers while the process runs.",
    security(),
    responses((status = 200, description = "The process runs.", body = String,
               content_type = "text/plain", example = "ok"))
)]
async fn healthz() -> &'static str {
    "ok"
}

/// `GET /api/v1/openapi.json`: the OpenAPI document of this side's API,
/// behind a token like every other `/api/v1` route (docs/API.md §1.1).
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "ops",
    operation_id = "getOpenApi",
    summary = "This document",
    description = "The OpenAPI 3.1 document of this side's API.",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this side's API.",
         body = Object, content_type = "application/json"),
        Bearer,
    )
)]
async fn openapi_json(State(state): State<AppState>, _caller: Caller) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        super::openapi::document_text(state.engine.role()),
    )
        .into_response()
}

/// Ready means the database takes writes: a probe through the write path
/// requests use, within `storage::READY_TIMEOUT`; otherwise 503 saying why.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    operation_id = "readyz",
    summary = "Readiness",
    description = "Ready means the database takes writes: a probe through the write path \
                   requests use, answered within 2 s.",
    security(),
    responses(
        (status = 200, description = "The database takes writes: a probe through the write \
                                      path answered within 2 s.",
         body = String, content_type = "text/plain", example = "ready"),
        Timeout,
        NotReady,
    )
)]
async fn readyz(State(state): State<AppState>) -> Response {
    match state.engine.db().check_ready().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(why) => ApiError::Unavailable(format!("not ready: {why}")).into_response(),
    }
}

/// Longest a scrape waits for the gauges read from the database.
const GAUGE_READ_TIMEOUT: Duration = Duration::from_secs(1);

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    operation_id = "metrics",
    summary = "Prometheus metrics",
    description = "Outbox gauges, sync counters and request durations, labelled with the role.",
    security(),
    responses(
        (status = 200, description = "Prometheus text exposition format.", body = String,
         content_type = "text/plain; version=0.0.4",
         example = "# TYPE fulfillment_outbox_pending gauge\nfulfillment_outbox_pending 0\n"),
        Timeout,
    )
)]
async fn metrics(State(state): State<AppState>) -> Response {
    let m = state.engine.metrics();
    // Gauges that live in the database are read at scrape time. When the
    // database does not answer, they show NaN (unknown) rather than a
    // stale value, and the scrape is not held up.
    match tokio::time::timeout(GAUGE_READ_TIMEOUT, state.engine.outbox_status()).await {
        Ok(Ok(status)) => {
            m.outbox_pending.set(status.pending as f64);
            m.outbox_dead.set(status.dead as f64);
        }
        _ => {
            m.outbox_pending.set(f64::NAN);
            m.outbox_dead.set(f64::NAN);
        }
    }
    m.breaker_state
        .set(f64::from(state.peers.worst().as_gauge()));
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        m.render(),
    )
        .into_response()
}

/// Records the duration of every request by method, route pattern and status.
pub async fn time_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    crate::memory::busy();
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    state.engine.metrics().http_request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// Counts a refused sync request in `fulfillment_sync_refused_total` and
/// logs it, throttled: a flood of forged or stale requests costs a few log
/// lines, not one per request.
pub(super) fn refused_sync_request(state: &AppState, e: &SignatureError) {
    let reason = match e {
        SignatureError::Missing(_) => "missing_header",
        SignatureError::BadTimestamp => "bad_timestamp",
        SignatureError::OutsideTolerance => "clock_skew",
        SignatureError::Mismatch => "signature",
    };
    let m = state.engine.metrics();
    const WHAT: &str = "refused sync requests";
    if m.warnings.note(reason, &m.sync_refused(reason), WHAT) {
        tracing::warn!(reason = %e, "refused a sync request (repeats are counted in fulfillment_sync_refused_total and summarised every 10 s)");
    }
}

//! Operational endpoints: liveness, readiness and Prometheus metrics, and
//! the middleware that times every request.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn readyz(State(state): State<AppState>) -> Response {
    if state.engine.db().ping().await {
        (StatusCode::OK, "ready").into_response()
    } else {
        ApiError::Unavailable("the database does not answer; check that it is running".into())
            .into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let m = state.engine.metrics();
    // Gauges that live in the database are read at scrape time.
    if let Ok(status) = state.engine.outbox_status().await {
        m.outbox_pending.set(status.pending as f64);
        m.outbox_dead.set(status.dead as f64);
    }
    m.breaker_state
        .set(f64::from(state.breaker.state().as_gauge()));
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

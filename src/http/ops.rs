//! Operational endpoints: liveness, readiness and Prometheus metrics.

use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;

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
        super::error::ApiError::Unavailable(
            "the database does not answer; check that it is running".into(),
        )
        .into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let role = state.engine.role().as_str();
    let m = state.engine.metrics();
    let status = state.engine.outbox_status().await.unwrap_or_default();
    let mut out = String::with_capacity(1024);
    let mut put = |name: &str, kind: &str, help: &str, value: String| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{role=\"{role}\"}} {value}\n"
        ));
    };
    put(
        "fulfillment_outbox_pending",
        "gauge",
        "Outbox rows waiting for delivery.",
        status.pending.to_string(),
    );
    put(
        "fulfillment_outbox_dead",
        "gauge",
        "Dead letters waiting for a replay.",
        status.dead.to_string(),
    );
    put(
        "fulfillment_sync_delivered_total",
        "counter",
        "Snapshots the peer acknowledged (applied or already held).",
        m.delivered.load(Ordering::Relaxed).to_string(),
    );
    put(
        "fulfillment_sync_failures_total",
        "counter",
        "Snapshots whose delivery attempt failed.",
        m.delivery_failures.load(Ordering::Relaxed).to_string(),
    );
    put(
        "fulfillment_sync_applied_total",
        "counter",
        "Peer snapshots applied here.",
        m.applied.load(Ordering::Relaxed).to_string(),
    );
    put(
        "fulfillment_sync_breaker_state",
        "gauge",
        "Circuit breaker towards the peer: 0 closed, 1 half-open, 2 open.",
        state.breaker.state().as_gauge().to_string(),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

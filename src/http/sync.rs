//! `/api/v1/sync/**`: the signed peer endpoint, and the authenticated status
//! and replay routes that operators (and the admin UI) use.

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, Caller, body_bytes, parse_json};
use crate::domain::OrderId;
use crate::domain::snapshot::{SyncBatch, SyncBatchResult};
use crate::storage::outbox::ReplaySelection;
use crate::storage::{from_micros, now_micros, outbox};
use crate::sync::apply::{BatchRefused, apply_batch};
use crate::sync::signature::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sync/changes", post(changes))
        .route("/sync/status", get(status))
        .route("/sync/replay", post(replay))
}

/// Most items the receiver takes in one batch.
pub const MAX_BATCH: usize = 1000;

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn changes(State(state): State<AppState>, req: Request) -> ApiResult<Response> {
    let headers = req.headers().clone();
    let body = body_bytes(req, &state).await?;
    // Authenticate before parsing anything: an unsigned body is not read.
    let now = chrono::Utc::now().timestamp();
    state
        .secrets
        .verify(
            header(&headers, HEADER_ID),
            header(&headers, HEADER_TIMESTAMP),
            header(&headers, HEADER_SIGNATURE),
            &body,
            now,
        )
        .map_err(|e| {
            tracing::warn!(reason = %e, "refused a sync request");
            ApiError::Unauthorized(format!("sync request refused: {e}"))
        })?;
    let (batch, _) = parse_json::<SyncBatch>(&body)?;
    if batch.changes.len() > MAX_BATCH {
        return Err(ApiError::field(
            "changes",
            format!("at most {MAX_BATCH} items per batch"),
        ));
    }
    let id = header(&headers, HEADER_ID).unwrap_or_default();
    match apply_batch(&state.engine, id, &batch.changes).await? {
        Ok(results) => Ok(Json(SyncBatchResult { results }).into_response()),
        Err(e @ BatchRefused::Replayed) => Err(ApiError::Conflict(e.to_string())),
    }
}

async fn status(State(state): State<AppState>, _caller: Caller) -> ApiResult<Response> {
    let s = state.engine.outbox_status().await?;
    let now = now_micros();
    Ok(Json(serde_json::json!({
        "pending": s.pending,
        "dead": s.dead,
        "oldest_pending_seconds": s.oldest_pending_at.map(|t| ((now - t).max(0) as f64) / 1e6),
        "breaker": state.breaker.state(),
        "last_delivered_at": s.last_delivered_at.map(from_micros),
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    #[serde(default)]
    ids: Option<Vec<OrderId>>,
    #[serde(default)]
    all: Option<bool>,
    #[serde(default)]
    since: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    dry_run: bool,
}

async fn replay(
    State(state): State<AppState>,
    _caller: Caller,
    ApiJson { value: b, .. }: ApiJson<ReplayBody>,
) -> ApiResult<Response> {
    let which = match (b.ids, b.all, b.since) {
        (Some(ids), None | Some(false), None) => ReplaySelection::Ids(ids),
        (None, Some(true), None) => ReplaySelection::All,
        (None, None | Some(false), Some(t)) => ReplaySelection::Since(t.timestamp_micros()),
        _ => {
            return Err(ApiError::field(
                "body",
                "give exactly one of ids, all: true, or since",
            ));
        }
    };
    let mut tx = state.engine.db().begin().await?;
    let n = outbox::replay(
        &mut tx,
        state.engine.peer(),
        &which,
        b.dry_run,
        now_micros(),
    )
    .await?;
    tx.commit()
        .await
        .map_err(crate::storage::StorageError::from)?;
    if !b.dry_run && n > 0 {
        state.engine.wake_relay();
    }
    Ok(Json(serde_json::json!({ "replayed": n, "dry_run": b.dry_run })).into_response())
}

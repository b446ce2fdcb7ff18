//! `/api/v1/sync/**`: the signed peer endpoints (changes, and the digests,
//! versions and resend calls of reconciliation), and the token-authenticated
//! status, replay and reconcile routes that operators and the admin UI use.

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, Caller, body_bytes, parse_json};
use super::{AppState, routes};
use crate::domain::role::Command;
use crate::domain::snapshot::{MAX_VERSION, SyncBatch, SyncBatchResult};
use crate::domain::{FieldError, OrderId};
use crate::engine::ReplaySelection;
use crate::engine::apply::{BatchRefused, apply_batch};
use crate::storage::{from_micros, now_micros};
use crate::sync::reconcile::{
    self, DigestsAnswer, DigestsRequest, Job, MAX_RANGES, MAX_RESEND, MAX_ROWS, ResendAnswer,
    ResendRequest, VersionsAnswer, VersionsRequest,
};
use crate::sync::signature::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sync/changes", post(changes))
        .route("/sync/status", get(status))
        .route("/sync/replay", post(replay))
        .route("/sync/reconcile", post(reconcile_start).get(reconcile_job))
        .route("/sync/digests", post(peer_digests))
        .route("/sync/versions", post(peer_versions))
        .route("/sync/resend", post(peer_resend))
}

/// Most items the receiver takes in one batch.
pub const MAX_BATCH: usize = 1000;

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Reads a peer request's body after checking its signature (an unsigned
/// body is never parsed) and that its `webhook-id` is new: a captured
/// request sent again within the timestamp tolerance is refused with 409.
/// (`/sync/changes` remembers its id in the transaction that applies the
/// batch, see [`signed_body_unremembered`].)
async fn signed_body(state: &AppState, req: Request) -> ApiResult<axum::body::Bytes> {
    let (headers, body) = signed_body_unremembered(state, req).await?;
    let id = header(&headers, HEADER_ID).unwrap_or_default();
    if state.engine.remember_webhook(id).await? {
        Ok(body)
    } else {
        Err(ApiError::Conflict(BatchRefused::Replayed.to_string()))
    }
}

/// A peer request's headers and body, once its signature is checked.
async fn signed_body_unremembered(
    state: &AppState,
    req: Request,
) -> ApiResult<(HeaderMap, axum::body::Bytes)> {
    let headers = req.headers().clone();
    let body = body_bytes(req, state).await?;
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
            super::ops::refused_sync_request(state, &e);
            ApiError::Unauthorized(format!("sync request refused: {e}"))
        })?;
    Ok((headers, body))
}

async fn changes(State(state): State<AppState>, req: Request) -> ApiResult<Response> {
    let (headers, body) = signed_body_unremembered(&state, req).await?;
    let batch = parse_json::<SyncBatch>(&body)?;
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
    let last = state.engine.last_reconcile().await?;
    let now = now_micros();
    Ok(Json(serde_json::json!({
        "last_reconciliation": last.map(|r| serde_json::json!({
            "finished_at": from_micros(r.finished_at),
            "compared": r.compared,
            "differences": r.differences,
            "repaired": r.repaired,
            "error": r.error,
        })),
        "pending": s.pending,
        "dead": s.dead,
        "oldest_pending_seconds": s.oldest_pending_at.map(|t| ((now - t).max(0) as f64) / 1e6),
        "breaker": state.breaker.state(),
        "last_delivered_at": s.last_delivered_at.map(from_micros),
        // Why deliveries fail, while something still waits to go.
        "last_error": state.breaker.last_error().filter(|_| s.pending > 0).map(|(at, detail)| {
            serde_json::json!({"at": from_micros(at), "detail": detail})
        }),
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
    let n = state.engine.replay_dead_letters(which, b.dry_run).await?;
    Ok(Json(serde_json::json!({ "replayed": n, "dry_run": b.dry_run })).into_response())
}

async fn peer_digests(State(state): State<AppState>, req: Request) -> ApiResult<Response> {
    let body = signed_body(&state, req).await?;
    let r = parse_json::<DigestsRequest>(&body)?;
    if r.ranges.len() > MAX_RANGES {
        return Err(ApiError::field(
            "ranges",
            format!("at most {MAX_RANGES} ranges per request"),
        ));
    }
    let digests = reconcile::local_digests(&state.engine, &r.ranges).await?;
    Ok(Json(DigestsAnswer { digests }).into_response())
}

async fn peer_versions(State(state): State<AppState>, req: Request) -> ApiResult<Response> {
    let body = signed_body(&state, req).await?;
    let r = parse_json::<VersionsRequest>(&body)?;
    if !(1..=MAX_ROWS).contains(&r.limit) {
        return Err(ApiError::field(
            "limit",
            format!("must be between 1 and {MAX_ROWS}"),
        ));
    }
    let rows = reconcile::local_versions(&state.engine, &r.range, r.limit).await?;
    Ok(Json(VersionsAnswer { rows }).into_response())
}

async fn peer_resend(State(state): State<AppState>, req: Request) -> ApiResult<Response> {
    let body = signed_body(&state, req).await?;
    let r = parse_json::<ResendRequest>(&body)?;
    if r.items.len() > MAX_RESEND {
        return Err(ApiError::field(
            "items",
            format!("at most {MAX_RESEND} items per request"),
        ));
    }
    // A version is raised to `above + 1`: keep that a version a snapshot may
    // carry (and far from overflowing).
    let bad: Vec<FieldError> = r
        .items
        .iter()
        .enumerate()
        .filter(|(_, i)| i.above.is_some_and(|a| !(0..MAX_VERSION).contains(&a)))
        .map(|(n, _)| {
            FieldError::new(
                format!("items[{n}].above"),
                format!("must be between 0 and {}", MAX_VERSION - 1),
            )
        })
        .collect();
    if !bad.is_empty() {
        return Err(ApiError::invalid(bad));
    }
    let (resent, unknown) = reconcile::resend(&state.engine, &r.items).await?;
    Ok(Json(ResendAnswer { resent, unknown }).into_response())
}

/// Starts a reconciliation pass in the background: 202 with the job, to
/// follow at `GET /api/v1/sync/reconcile`. A pass over a large database
/// takes longer than any request may, so it is never run inside one.
async fn reconcile_start(State(state): State<AppState>, _caller: Caller) -> ApiResult<Response> {
    routes::RECONCILE.check(state.engine.role(), Command::Reconcile)?;
    match state.reconciler.start() {
        Ok(job) => Ok((
            axum::http::StatusCode::ACCEPTED,
            [(axum::http::header::LOCATION, "/api/v1/sync/reconcile")],
            Json(job),
        )
            .into_response()),
        Err(running) => Err(ApiError::Conflict(format!(
            "a reconciliation is already running{}; follow it at GET /api/v1/sync/reconcile",
            running
                .since
                .map(|t| format!(" (started {})", t.to_rfc3339()))
                .unwrap_or_default()
        ))),
    }
}

/// The reconciliation pass running now, or the last one.
async fn reconcile_job(State(state): State<AppState>, _caller: Caller) -> ApiResult<Response> {
    let job = match state.reconciler.job() {
        Some(job) => Some(job),
        // Run by another process (the CLI, a replica) or before a restart.
        None => state
            .engine
            .last_reconcile()
            .await?
            .map(|run| Job::from_run(&run)),
    };
    match job {
        Some(job) => Ok(Json(job).into_response()),
        None => Err(ApiError::NotFound(
            "no reconciliation has run yet; start one with POST /api/v1/sync/reconcile".into(),
        )),
    }
}

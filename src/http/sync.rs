//! `/api/v1/sync/**`: the signed peer endpoints (changes, and the digests,
//! versions and resend calls of reconciliation), and the token-authenticated
//! status, replay and reconcile routes that operators and the admin UI use.

use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa::openapi::schema::{Array, ArrayBuilder};
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiJson, Caller, OptionalJson, body_bytes, parse_json};
use super::openapi::{BadBody, Bearer, JsonBody, PROBLEM, Signed, WebhookHeaders, Writes};
use super::routes::{self as route, Api};
use super::views::{DeliveryStatus, LastReconciliation, ReplayResult, SyncStatus};
use crate::domain::Role;
use crate::domain::role::Command;
use crate::domain::snapshot::{
    ContentSnapshot, FulfillmentSnapshot, MAX_VERSION, SyncBatch, SyncBatchResult,
};
use crate::domain::{FieldError, OrderId};
use crate::engine::ReplaySelection;
use crate::engine::apply::{BatchRefused, apply_batch};
use crate::storage::{from_micros, now_micros};
use crate::sync::reconcile::{
    self, DigestsAnswer, DigestsRequest, Job, MAX_RANGES, MAX_RESEND, MAX_ROWS, ResendAnswer,
    ResendRequest, VersionsAnswer, VersionsRequest,
};
use crate::sync::signature::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};

/// The sync routes of one side: the signed peer endpoints (the batch each
/// side receives is the other side's snapshots), status, replay and
/// reconciliation (started from the store only).
pub fn routes(api: Api) -> Api {
    let changes = match api.role() {
        Role::Store => routes!(changes_at_store),
        Role::Warehouse => routes!(changes_at_warehouse),
    };
    api.serve(changes)
        .serve(routes!(status))
        .serve(routes!(replay))
        .runs(
            &route::RECONCILE,
            Command::Reconcile,
            routes!(reconcile_start),
        )
        .serve(routes!(reconcile_job))
        .serve(routes!(peer_digests))
        .serve(routes!(peer_versions))
        .serve(routes!(peer_resend))
}

/// Most items the receiver takes in one batch.
pub const MAX_BATCH: usize = 1000;

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// A signed peer request, once checked: who signed it (the store; at the
/// store, the warehouse, or the warehouses sharing the secret that signed
/// it) and its body.
struct SignedRequest {
    by: Vec<String>,
    body: axum::body::Bytes,
}

impl SignedRequest {
    /// The peer the request speaks for (the first of several that share a
    /// secret: they cannot be told apart, so give each its own).
    fn peer(&self) -> &str {
        self.by.first().map_or("", String::as_str)
    }
}

/// Reads a peer request's body after checking its signature (an unsigned
/// body is never parsed) and that its `webhook-id` is new: a captured
/// request sent again within the timestamp tolerance is refused with 409.
/// (`/sync/changes` remembers its id in the transaction that applies the
/// batch, see [`signed_body_unremembered`].)
async fn signed_body(state: &AppState, req: Request) -> ApiResult<SignedRequest> {
    let (headers, signed) = signed_body_unremembered(state, req).await?;
    let id = header(&headers, HEADER_ID).unwrap_or_default();
    if state.engine.remember_webhook(id).await? {
        Ok(signed)
    } else {
        Err(ApiError::Conflict(BatchRefused::Replayed.to_string()))
    }
}

/// A peer request's headers, signers and body, once its signature is
/// checked against every peer's secrets.
async fn signed_body_unremembered(
    state: &AppState,
    req: Request,
) -> ApiResult<(HeaderMap, SignedRequest)> {
    let headers = req.headers().clone();
    let body = body_bytes(req, state).await?;
    let now = chrono::Utc::now().timestamp();
    let by = state
        .peers
        .signers(
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
    Ok((headers, SignedRequest { by, body }))
}

fn batch_of(item: &str) -> Array {
    ArrayBuilder::new()
        .items(utoipa::openapi::Ref::from_schema_name(item))
        .max_items(Some(MAX_BATCH))
        .build()
}

fn content_batch() -> Array {
    batch_of("ContentSnapshot")
}

fn fulfillment_batch() -> Array {
    batch_of("FulfillmentSnapshot")
}

/// The body of `POST /api/v1/sync/changes` at the warehouse, as documented
/// (the handler keeps each item raw, [`SyncBatch`], so that one bad item is
/// rejected on its own).
#[derive(ToSchema)]
#[schema(as = ContentBatch)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ContentBatch {
    /// Content snapshots from the store.
    #[schema(schema_with = content_batch)]
    changes: Vec<ContentSnapshot>,
}

/// The body of `POST /api/v1/sync/changes` at the store, as documented.
#[derive(ToSchema)]
#[schema(as = FulfillmentBatch)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct FulfillmentBatch {
    /// Fulfillment snapshots from the warehouse.
    #[schema(schema_with = fulfillment_batch)]
    changes: Vec<FulfillmentSnapshot>,
}

#[utoipa::path(
    post,
    path = "/api/v1/sync/changes",
    tag = "sync",
    operation_id = "receiveSyncChanges",
    summary = "Receive a signed batch from the other service",
    description = "Peer to peer: fulfillment snapshots from the warehouse. Signed with the \
                   Standard Webhooks scheme instead of a bearer token. Each item is applied, \
                   stale, or rejected on its own.",
    security(),
    params(WebhookHeaders),
    request_body = FulfillmentBatch,
    responses(
        (status = 200, description = "One result per item, in request order.",
         body = SyncBatchResult),
        (status = 422, description = format!("The body is not a batch, or has more than {MAX_BATCH} items."),
         body = Problem, content_type = PROBLEM),
        Writes,
        Signed,
    )
)]
async fn changes_at_store(state: State<AppState>, req: Request) -> ApiResult<Response> {
    changes(state, req).await
}

#[utoipa::path(
    post,
    path = "/api/v1/sync/changes",
    tag = "sync",
    operation_id = "receiveSyncChanges",
    summary = "Receive a signed batch from the other service",
    description = "Peer to peer: content snapshots from the store. Signed with the Standard \
                   Webhooks scheme instead of a bearer token. Each item is applied, stale, or \
                   rejected on its own.",
    security(),
    params(WebhookHeaders),
    request_body = ContentBatch,
    responses(
        (status = 200, description = "One result per item, in request order.",
         body = SyncBatchResult),
        (status = 422, description = format!("The body is not a batch, or has more than {MAX_BATCH} items."),
         body = Problem, content_type = PROBLEM),
        Writes,
        Signed,
    )
)]
async fn changes_at_warehouse(state: State<AppState>, req: Request) -> ApiResult<Response> {
    changes(state, req).await
}

async fn changes(State(state): State<AppState>, req: Request) -> ApiResult<Response> {
    let (headers, signed) = signed_body_unremembered(&state, req).await?;
    let batch = parse_json::<SyncBatch>(&signed.body)?;
    if batch.changes.len() > MAX_BATCH {
        return Err(ApiError::field(
            "changes",
            format!("at most {MAX_BATCH} items per batch"),
        ));
    }
    let id = header(&headers, HEADER_ID).unwrap_or_default();
    match apply_batch(&state.engine, &signed.by, id, &batch.changes).await? {
        Ok(results) => Ok(Json(SyncBatchResult { results }).into_response()),
        Err(e @ BatchRefused::Replayed) => Err(ApiError::Conflict(e.to_string())),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/sync/status",
    tag = "sync",
    operation_id = "getSyncStatus",
    summary = "Outbox towards the other service",
    description = "At the store, the counts are summed over every warehouse, `breaker` is the \
                   worst of theirs, and `warehouses` gives each one's. A warehouse answers \
                   without `warehouses`.",
    responses(
        (status = 200, description = "Outbox and breaker state.", body = SyncStatus),
        Bearer,
    )
)]
async fn status(State(state): State<AppState>, _caller: Caller) -> ApiResult<Response> {
    let (s, warehouses) = super::warehouses::deliveries(&state).await?;
    let last = state.engine.last_reconcile().await?;
    Ok(Json(SyncStatus {
        last_reconciliation: last.map(|r| LastReconciliation {
            finished_at: from_micros(r.finished_at),
            compared: r.compared,
            differences: r.differences,
            repaired: r.repaired,
            error: r.error,
        }),
        delivery: DeliveryStatus::new(
            &s,
            state.peers.worst(),
            state.peers.last_error().map(|(at, _, detail)| (at, detail)),
            now_micros(),
        ),
        warehouses,
    })
    .into_response())
}

/// Which dead letters to send again: exactly one of `ids`, `all: true` or
/// `since`.
#[derive(Deserialize, ToSchema)]
#[schema(as = ReplayRequest, example = json!({"all": true, "dry_run": true}))]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    /// The dead letters of these orders.
    #[serde(default)]
    ids: Option<Vec<OrderId>>,
    /// Every dead letter.
    #[serde(default)]
    all: Option<bool>,
    /// Dead letters whose change was first queued at or after this time.
    #[serde(default)]
    since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only count what would be replayed.
    #[schema(default = false)]
    #[serde(default)]
    dry_run: bool,
    /// The store only: only the dead letters to this warehouse (default:
    /// to every warehouse). A name no warehouse has is 422.
    #[schema(schema_with = crate::domain::schema::optional_warehouse_name)]
    #[serde(default)]
    warehouse: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/sync/replay",
    tag = "sync",
    operation_id = "replaySync",
    summary = "Dead letters back to pending",
    description = "What `fulfillment outbox replay` does. With `dry_run`, only counts. At the \
                   store, `warehouse` limits it to the dead letters to that warehouse.",
    request_body = ReplayBody,
    responses(
        (status = 200, description = "How many were (or would be) replayed.",
         body = ReplayResult),
        BadBody,
        (status = 422, description = "Not exactly one of ids, all: true or since; an invalid \
                                      value or unknown field; or a `warehouse` that does not \
                                      exist (or is given at the warehouse).",
         body = Problem, content_type = PROBLEM),
        JsonBody,
        Writes,
        Bearer,
    )
)]
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
    let to = super::warehouses::named(&state, b.warehouse).await?;
    let n = state
        .engine
        .replay_dead_letters_to(to, which, b.dry_run)
        .await?;
    Ok(Json(ReplayResult {
        replayed: n,
        dry_run: b.dry_run,
    })
    .into_response())
}

#[utoipa::path(
    post,
    path = "/api/v1/sync/digests",
    tag = "sync",
    operation_id = "peerDigests",
    summary = "Digests of id ranges (reconciliation, peer to peer)",
    description = "Signed like sync/changes. Answers one digest per range, in request order: \
                   the number of orders whose id is in `[lo, hi)` and a checksum of each \
                   side's versions.",
    security(),
    params(WebhookHeaders),
    request_body = DigestsRequest,
    responses(
        (status = 200, description = "One digest per range.", body = DigestsAnswer),
        (status = 422, description = format!("The body is not a digests request, or has more \
                                              than {MAX_RANGES} ranges."),
         body = Problem, content_type = PROBLEM),
        Signed,
    )
)]
async fn peer_digests(State(state): State<AppState>, req: Request) -> ApiResult<Response> {
    let signed = signed_body(&state, req).await?;
    let r = parse_json::<DigestsRequest>(&signed.body)?;
    if r.ranges.len() > MAX_RANGES {
        return Err(ApiError::field(
            "ranges",
            format!("at most {MAX_RANGES} ranges per request"),
        ));
    }
    let digests = reconcile::local_digests(&state.engine, signed.peer(), &r.ranges).await?;
    Ok(Json(DigestsAnswer { digests }).into_response())
}

#[utoipa::path(
    post,
    path = "/api/v1/sync/versions",
    tag = "sync",
    operation_id = "peerVersions",
    summary = "Versions of the orders in an id range (reconciliation, peer to peer)",
    description = "Signed like sync/changes. At most `limit` orders of `[lo, hi)`, by id.",
    security(),
    params(WebhookHeaders),
    request_body = VersionsRequest,
    responses(
        (status = 200, description = "The orders' versions.", body = VersionsAnswer),
        (status = 422, description = format!("The body is not a versions request, or `limit` \
                                              is not between 1 and {MAX_ROWS}."),
         body = Problem, content_type = PROBLEM),
        Signed,
    )
)]
async fn peer_versions(State(state): State<AppState>, req: Request) -> ApiResult<Response> {
    let signed = signed_body(&state, req).await?;
    let r = parse_json::<VersionsRequest>(&signed.body)?;
    if !(1..=MAX_ROWS).contains(&r.limit) {
        return Err(ApiError::field(
            "limit",
            format!("must be between 1 and {MAX_ROWS}"),
        ));
    }
    let rows = reconcile::local_versions(&state.engine, signed.peer(), &r.range, r.limit).await?;
    Ok(Json(VersionsAnswer { rows }).into_response())
}

#[utoipa::path(
    post,
    path = "/api/v1/sync/resend",
    tag = "sync",
    operation_id = "peerResend",
    summary = "Send these orders again (reconciliation, peer to peer)",
    description = "Signed like sync/changes. Enqueues this side's snapshot of each known order \
                   again, first raising its version above `above` when it is not higher.",
    security(),
    params(WebhookHeaders),
    request_body = ResendRequest,
    responses(
        (status = 200, description = "How many were enqueued and how many are unknown here.",
         body = ResendAnswer),
        (status = 422, description = format!("The body is not a resend request, has more than \
                                              {MAX_RESEND} items, or an `above` outside 0 to {}.",
                                             MAX_VERSION - 1),
         body = Problem, content_type = PROBLEM),
        Writes,
        Signed,
    )
)]
async fn peer_resend(State(state): State<AppState>, req: Request) -> ApiResult<Response> {
    let signed = signed_body(&state, req).await?;
    let r = parse_json::<ResendRequest>(&signed.body)?;
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
    let (resent, unknown) = reconcile::resend(&state.engine, signed.peer(), &r.items).await?;
    Ok(Json(ResendAnswer { resent, unknown }).into_response())
}

/// What `POST /api/v1/sync/reconcile` may be given (the body is optional).
#[derive(Deserialize, Default, ToSchema)]
#[schema(as = ReconcileRequest, example = json!({"warehouse": "eu"}))]
#[serde(deny_unknown_fields)]
pub(super) struct ReconcileBody {
    /// Only this warehouse (default, or null: every warehouse). A name no
    /// warehouse has is 422.
    #[schema(schema_with = crate::domain::schema::optional_warehouse_name)]
    #[serde(default)]
    warehouse: Option<String>,
}

/// Starts a reconciliation pass in the background: 202 with the job, to
/// follow at `GET /api/v1/sync/reconcile`. A pass over a large database
/// takes longer than any request may, so it is never run inside one.
#[utoipa::path(
    post,
    path = "/api/v1/sync/reconcile",
    tag = "sync",
    operation_id = "startReconciliation",
    summary = "Start a reconciliation pass",
    description = "Starts a pass that compares this side with the other service by digests and \
                   repairs what differs, in the background (a pass over a large database \
                   outlasts any request), and answers it as it starts. Follow it with GET on \
                   the same path; the last pass is also in `/api/v1/sync/status`. The body is \
                   optional: none (or an empty one) reconciles with every warehouse, \
                   `{\"warehouse\": \"eu\"}` with that one only.",
    // By reference, so that the body is optional without being nullable
    // (`openapi::base` adds the schema where this operation is served).
    request_body(
        content = ref("#/components/schemas/ReconcileRequest"),
        content_type = "application/json",
        description = "Optional: the one warehouse to reconcile with."
    ),
    responses(
        (status = 202, description = "The pass started.", body = Job,
         headers(("Location" = String, description = "Where to follow it."))),
        (status = 400, description = "The body is not valid JSON.", body = Problem,
         content_type = PROBLEM),
        (status = 409, description = "A reconciliation is already running.", body = Problem,
         content_type = PROBLEM),
        (status = 422, description = "No warehouse has that name, or the body has an unknown \
                                      field.", body = Problem, content_type = PROBLEM),
        JsonBody,
        Bearer,
    )
)]
async fn reconcile_start(
    State(state): State<AppState>,
    _caller: Caller,
    body: Request,
) -> ApiResult<Response> {
    route::RECONCILE.check(state.engine.role(), Command::Reconcile)?;
    let OptionalJson(body) = OptionalJson::<ReconcileBody>::from_request(body, &state).await?;
    let only = super::warehouses::named(&state, body.unwrap_or_default().warehouse).await?;
    match state.reconciler.start_with(only) {
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
#[utoipa::path(
    get,
    path = "/api/v1/sync/reconcile",
    tag = "sync",
    operation_id = "getReconciliation",
    summary = "The reconciliation pass running now, or the last one",
    responses(
        (status = 200, description = "The pass.", body = Job),
        (status = 404, description = "No reconciliation has run yet.", body = Problem,
         content_type = PROBLEM),
        Bearer,
    )
)]
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

//! `/api/v1/orders/**`: the order API of both roles. One set of handlers;
//! the engine refuses what a role may not do (405), and the view chooses
//! the store's or the warehouse's shape.

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, Caller, OrderPath, body_bytes, is_json, parse_json};
use super::routes;
use super::views::order_json;
use crate::domain::delivery::SyncState;
use crate::domain::order::{CreateOrderInput, PatchOrderInput};
use crate::domain::role::Command;
use crate::domain::values::{MAX_TEXT, optional_text};
use crate::domain::{Action, FulfillmentStatus, Role};
use crate::engine::{Created, IdempotencyKey, OrderView};
use crate::engine::{ListFilter, StatusFilter};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orders", get(list).post(create))
        .route("/orders/{id}", get(get_one).patch(patch).delete(delete))
        .route("/orders/{id}/cancel", post(cancel))
        .route("/orders/{id}/fulfillment", post(fulfillment))
        .route("/orders/{id}/audit", get(audit))
        .route("/orders/{id}/sync", get(sync_timeline))
}

/// Refuses, with 405 and the methods the route does allow here, a route this
/// side does not serve.
fn respond(state: &AppState, status: StatusCode, v: &OrderView) -> Response {
    (status, Json(order_json(state.engine.role(), v))).into_response()
}

#[derive(Deserialize)]
pub struct ListParams {
    limit: Option<String>,
    cursor: Option<String>,
    status: Option<String>,
    updated_since: Option<String>,
    q: Option<String>,
    sync: Option<String>,
}

pub const MAX_LIMIT: u32 = 500;

impl ListParams {
    /// Turns query parameters into a filter, listing every bad one.
    pub fn filter(&self, role: Role) -> ApiResult<ListFilter> {
        let mut errors = Vec::new();
        let mut f = ListFilter {
            limit: 50,
            ..Default::default()
        };
        if let Some(l) = &self.limit {
            match l.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => f.limit = n,
                _ => errors.push(crate::domain::FieldError::new(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_LIMIT}"),
                )),
            }
        }
        if let Some(c) = self.cursor.as_deref().filter(|c| !c.is_empty()) {
            match crate::domain::OrderId::parse(c) {
                Some(id) => f.after = Some(id),
                None => errors.push(crate::domain::FieldError::new(
                    "cursor",
                    "is not a cursor from a previous page",
                )),
            }
        }
        if let Some(s) = self.status.as_deref().filter(|s| !s.is_empty()) {
            f.status = match (s, FulfillmentStatus::parse(s)) {
                (_, Some(st)) => Some(StatusFilter::Fulfillment(st)),
                ("open", None) if role == Role::Store => Some(StatusFilter::Open),
                ("cancel_requested", None) if role == Role::Store => {
                    Some(StatusFilter::CancelRequested)
                }
                _ => {
                    errors.push(crate::domain::FieldError::new(
                        "status",
                        "is not a known status",
                    ));
                    None
                }
            };
        }
        if let Some(t) = self.updated_since.as_deref().filter(|s| !s.is_empty()) {
            match chrono::DateTime::parse_from_rfc3339(t) {
                Ok(t) => f.updated_since = Some(t.with_timezone(&chrono::Utc).timestamp_micros()),
                Err(_) => errors.push(crate::domain::FieldError::new(
                    "updated_since",
                    "must be an RFC 3339 time",
                )),
            }
        }
        if let Some(q) = &self.q {
            match optional_text("q", Some(q), MAX_TEXT) {
                Ok(q) => f.search = q,
                Err(e) => errors.push(e),
            }
        }
        if let Some(s) = self.sync.as_deref().filter(|s| !s.is_empty()) {
            if SyncState::ALL.iter().any(|st| st.as_str() == s) {
                f.sync_state = Some(s.to_owned());
            } else {
                errors.push(crate::domain::FieldError::new(
                    "sync",
                    "must be pending, synced, failing or dead",
                ));
            }
        }
        if errors.is_empty() {
            Ok(f)
        } else {
            Err(ApiError::invalid(errors))
        }
    }
}

fn query<T>(q: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> ApiResult<T> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::BadRequest(format!("bad query string: {}", e.body_text())))
}

async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let mut filter = query(params)?.filter(state.engine.role())?;
    let limit = filter.limit as usize;
    // One more than asked tells whether another page exists, so the last
    // page never hands out a cursor to an empty one.
    filter.limit += 1;
    let mut views = state.engine.list(&filter).await?;
    let more = views.len() > limit;
    views.truncate(limit);
    let next_cursor = if more {
        views.last().map(|v| v.order.id.to_string())
    } else {
        None
    };
    let items: Vec<_> = views
        .iter()
        .map(|v| order_json(state.engine.role(), v))
        .collect();
    Ok(Json(serde_json::json!({ "items": items, "next_cursor": next_cursor })).into_response())
}

async fn get_one(
    State(state): State<AppState>,
    _caller: Caller,
    OrderPath(id): OrderPath,
) -> ApiResult<Response> {
    let v = state.engine.get(id).await?;
    Ok(respond(&state, StatusCode::OK, &v))
}

/// Longest accepted `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY: usize = 255;

async fn create(
    State(state): State<AppState>,
    Caller { actor, key_scope }: Caller,
    headers: HeaderMap,
    body: axum::extract::Request,
) -> ApiResult<Response> {
    routes::ORDERS.check(state.engine.role(), Command::CreateOrder)?;
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => match v.to_str() {
            Ok(k) if !k.trim().is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY => {
                Some(k.trim().to_owned())
            }
            _ => {
                return Err(ApiError::field(
                    "Idempotency-Key",
                    format!("must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
                ));
            }
        },
    };
    let ApiJson { value, body } = <ApiJson<CreateOrderInput> as axum::extract::FromRequest<
        AppState,
    >>::from_request(body, &state)
    .await?;
    let (content, pricing) = value.parse().map_err(ApiError::invalid)?;
    // serde_json's map is ordered by key, so its text is a canonical form:
    // the same body with keys in another order is the same request. Only a
    // request with a key needs it (the body parsed once above, so it is JSON).
    let hash = key.as_ref().map(|_| {
        let canonical = serde_json::from_slice::<serde_json::Value>(&body)
            .map(|v| v.to_string())
            .unwrap_or_default();
        Sha256::digest(canonical.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    });
    let role = state.engine.role();
    let render =
        move |v: &OrderView| serde_json::to_string(&order_json(role, v)).unwrap_or_default();
    let created = state
        .engine
        .create_order(
            &actor,
            content,
            pricing,
            key.as_deref()
                .zip(hash.as_deref())
                .map(|(key, request_hash)| IdempotencyKey {
                    caller: &key_scope,
                    key,
                    request_hash,
                }),
            render,
        )
        .await?;
    Ok(match created {
        Created::New(v) => {
            tracing::info!(order_id = %v.order.id, number = %v.order.number, "order created");
            respond(&state, StatusCode::CREATED, &v)
        }
        Created::Replayed(body) => (
            StatusCode::CREATED,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
    })
}

async fn patch(
    State(state): State<AppState>,
    Caller { actor, .. }: Caller,
    OrderPath(id): OrderPath,
    body: axum::extract::Request,
) -> ApiResult<Response> {
    routes::ORDER.check(state.engine.role(), Command::EditOrder)?;
    let ApiJson { value, .. } = <ApiJson<PatchOrderInput> as axum::extract::FromRequest<
        AppState,
    >>::from_request(body, &state)
    .await?;
    let v = state.engine.patch_order(&actor, id, &value).await?;
    Ok(respond(&state, StatusCode::OK, &v))
}

async fn delete(
    State(state): State<AppState>,
    _caller: Caller,
    // Extracting it checks the id: a bad one is 400, before the 405.
    _id: OrderPath,
) -> ApiResult<Response> {
    Err(ApiError::MethodNotAllowed {
        detail: "orders are never deleted; the store can request cancellation with POST /api/v1/orders/{id}/cancel".into(),
        allow: Some(routes::ORDER.allow(state.engine.role())),
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    #[serde(default)]
    reason: Option<String>,
}

async fn cancel(
    State(state): State<AppState>,
    Caller { actor, .. }: Caller,
    OrderPath(id): OrderPath,
    headers: HeaderMap,
    body: axum::extract::Request,
) -> ApiResult<Response> {
    routes::CANCEL.check(state.engine.role(), Command::RequestCancel)?;
    // The body is optional: an empty POST is a cancel without a reason; a
    // body, when sent, must be JSON like any other.
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = body_bytes(body, &state).await?;
    let reason = if bytes.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        if !is_json(&ct) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let value = parse_json::<CancelBody>(&bytes)?;
        optional_text("reason", value.reason.as_deref(), MAX_TEXT)
            .map_err(|e| ApiError::invalid(vec![e]))?
    };
    let v = state.engine.request_cancel(&actor, id, reason).await?;
    Ok(respond(&state, StatusCode::OK, &v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FulfillmentBody {
    status: String,
    #[serde(default)]
    carrier: Option<String>,
    #[serde(default)]
    tracking_number: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

async fn fulfillment(
    State(state): State<AppState>,
    Caller { actor, .. }: Caller,
    OrderPath(id): OrderPath,
    body: axum::extract::Request,
) -> ApiResult<Response> {
    routes::FULFILLMENT.check(state.engine.role(), Command::ChangeFulfillment)?;
    let ApiJson { value: b, .. } = <ApiJson<FulfillmentBody> as axum::extract::FromRequest<
        AppState,
    >>::from_request(body, &state)
    .await?;
    let action = Action::parse(
        &b.status,
        b.carrier.as_deref(),
        b.tracking_number.as_deref(),
        b.reason.as_deref(),
    )
    .map_err(ApiError::invalid)?;
    let v = state.engine.transition(&actor, id, action).await?;
    tracing::info!(order_id = %id, status = %b.status, "fulfillment changed");
    Ok(respond(&state, StatusCode::OK, &v))
}

async fn audit(
    State(state): State<AppState>,
    _caller: Caller,
    OrderPath(id): OrderPath,
) -> ApiResult<Response> {
    let entries = state.engine.audit(id).await?;
    let items: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| {
            serde_json::json!({
                "at": crate::storage::from_micros(e.at),
                "actor": {"kind": e.actor_kind, "name": e.actor_name},
                "changes": e.change_list(),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "items": items })).into_response())
}

/// How many delivery attempts the timeline shows.
const TIMELINE_LIMIT: i64 = 100;

async fn sync_timeline(
    State(state): State<AppState>,
    _caller: Caller,
    OrderPath(id): OrderPath,
) -> ApiResult<Response> {
    let v = state.engine.get(id).await?;
    let attempts = state.engine.attempts(id, TIMELINE_LIMIT).await?;
    let items: Vec<serde_json::Value> = attempts
        .iter()
        .map(|a| {
            serde_json::json!({
                "at": crate::storage::from_micros(a.at),
                "outcome": a.outcome,
                "detail": a.detail,
                "next_retry_at": a.next_retry_at.map(crate::storage::from_micros),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({
        "state": v.sync.state,
        "store_version": v.order.store_version,
        "warehouse_version": v.order.warehouse_version,
        "last_error": v.sync.last_error,
        "attempts": items,
    }))
    .into_response())
}

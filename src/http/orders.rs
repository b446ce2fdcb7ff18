//! `/api/v1/orders/**`: the order API of both roles. One set of handlers;
//! the engine refuses what a role may not do (405), and the view chooses
//! the store's or the warehouse's shape.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiJson, Caller, HoldPath, OptionalJson, OrderPath};
use super::openapi::{
    BadBody, BadId, BadIdOrBody, Bearer, HoldIdParams, IdempotencyKeyHeader, JsonBody, NoOrder,
    OrderIdParam, PROBLEM, StoreListParams, WarehouseListParams, Writes,
};
use super::routes::{self as route, Api};
use super::views::{
    ActorJson, Attempt, AuditEntry, AuditList, AuditPart, HoldJson, OrderPage, StoreOrder,
    SyncTimeline, WarehouseOrder, order_json,
};
use crate::domain::delivery::SyncState;
use crate::domain::holds::{HoldType, parse_hold};
use crate::domain::order::{CreateOrderInput, PatchOrderInput};
use crate::domain::role::Command;
use crate::domain::values::{MAX_TEXT, optional_text};
use crate::domain::{Action, Actor, FulfillmentStatus, Role};
use crate::engine::{Created, IdempotencyKey, OrderView};
use crate::engine::{ListFilter, StatusFilter};

/// The order routes of one side. Listing and reading orders is documented
/// per side (each with its own order shape); creating, editing and
/// cancelling are the store's, changing fulfillment the warehouse's.
pub fn routes(api: Api) -> Api {
    let (list, one, release) = match api.role() {
        Role::Store => (
            routes!(list_at_store),
            routes!(get_at_store),
            routes!(release_at_store),
        ),
        Role::Warehouse => (
            routes!(list_at_warehouse),
            routes!(get_at_warehouse),
            routes!(release_at_warehouse),
        ),
    };
    api.serve(list)
        .runs(&route::ORDERS, Command::CreateOrder, routes!(create))
        .serve(one)
        .runs(&route::ORDER, Command::EditOrder, routes!(patch))
        .serve(routes!(delete))
        .runs(&route::CANCEL, Command::RequestCancel, routes!(cancel))
        .runs(&route::ROUTE, Command::RouteOrder, routes!(route_again))
        .runs(
            &route::FULFILLMENT,
            Command::ChangeFulfillment,
            routes!(fulfillment),
        )
        .runs(
            &route::SHIPMENTS,
            Command::ChangeFulfillment,
            routes!(ship_parcel),
        )
        .runs(&route::REJECT, Command::ChangeFulfillment, routes!(reject))
        .serve(routes!(place_hold))
        .serve(release)
        .serve(routes!(audit))
        .serve(routes!(sync_timeline))
}

/// The order as this side shows it, answered with `status`.
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
/// Page size when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 50;

impl ListParams {
    /// Turns query parameters into a filter, listing every bad one.
    pub fn filter(&self, role: Role) -> ApiResult<ListFilter> {
        let mut errors = Vec::new();
        let mut f = ListFilter {
            limit: DEFAULT_LIMIT,
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
                // The order's own status (open or cancel requested) is the
                // side's that requests cancellation.
                ("open", None) if role.may(Command::RequestCancel) => Some(StatusFilter::Open),
                ("cancel_requested", None) if role.may(Command::RequestCancel) => {
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

type ListQuery = Result<Query<ListParams>, axum::extract::rejection::QueryRejection>;

#[utoipa::path(
    get,
    path = "/api/v1/orders",
    tag = "orders",
    operation_id = "listOrders",
    summary = "List orders, newest first",
    description = "Cursor pages: pass `next_cursor` as `cursor` for the next one.",
    params(StoreListParams),
    responses(
        (status = 200, description = "A page of orders.", body = OrderPage<StoreOrder>),
        (status = 400, description = "The query string cannot be read.", body = Problem,
         content_type = PROBLEM),
        (status = 422, description = "A query parameter is invalid; `errors` names each one.",
         body = Problem, content_type = PROBLEM),
        Bearer,
    )
)]
async fn list_at_store(
    state: State<AppState>,
    caller: Caller,
    q: ListQuery,
) -> ApiResult<Response> {
    list(state, caller, q).await
}

#[utoipa::path(
    get,
    path = "/api/v1/orders",
    tag = "orders",
    operation_id = "listOrders",
    summary = "List orders, newest first",
    description = "Cursor pages: pass `next_cursor` as `cursor` for the next one.",
    params(WarehouseListParams),
    responses(
        (status = 200, description = "A page of orders.", body = OrderPage<WarehouseOrder>),
        (status = 400, description = "The query string cannot be read.", body = Problem,
         content_type = PROBLEM),
        (status = 422, description = "A query parameter is invalid; `errors` names each one.",
         body = Problem, content_type = PROBLEM),
        Bearer,
    )
)]
async fn list_at_warehouse(
    state: State<AppState>,
    caller: Caller,
    q: ListQuery,
) -> ApiResult<Response> {
    list(state, caller, q).await
}

async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    params: ListQuery,
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
    Ok(Json(OrderPage { items, next_cursor }).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}",
    tag = "orders",
    operation_id = "getOrder",
    summary = "One order",
    params(OrderIdParam),
    responses(
        (status = 200, description = "The order.", body = StoreOrder),
        BadId,
        NoOrder,
        Bearer,
    )
)]
async fn get_at_store(
    state: State<AppState>,
    caller: Caller,
    id: OrderPath,
) -> ApiResult<Response> {
    get_one(state, caller, id).await
}

#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}",
    tag = "orders",
    operation_id = "getOrder",
    summary = "One order",
    params(OrderIdParam),
    responses(
        (status = 200, description = "The order.", body = WarehouseOrder),
        BadId,
        NoOrder,
        Bearer,
    )
)]
async fn get_at_warehouse(
    state: State<AppState>,
    caller: Caller,
    id: OrderPath,
) -> ApiResult<Response> {
    get_one(state, caller, id).await
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
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

#[utoipa::path(
    post,
    path = "/api/v1/orders",
    tag = "orders",
    operation_id = "createOrder",
    summary = "Create an order",
    description = "With an `Idempotency-Key`, the same key and body within 24 h answers 201 \
                   with the first response and creates nothing; the same key with another \
                   body is 422.",
    params(IdempotencyKeyHeader),
    request_body = CreateOrderInput,
    responses(
        (status = 201, description = "The order, created (or the first answer to this \
                                      Idempotency-Key).", body = StoreOrder),
        BadBody,
        (status = 409, description = "The next order number is already taken (only after a \
                                      hand edit of the database).",
         body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid values (every one listed in `errors`), a bad \
                                      Idempotency-Key, or the key reused with another body.",
         body = Problem, content_type = PROBLEM),
        JsonBody,
        Writes,
        Bearer,
    )
)]
async fn create(
    State(state): State<AppState>,
    Caller { actor, key_scope }: Caller,
    headers: HeaderMap,
    body: axum::extract::Request,
) -> ApiResult<Response> {
    route::ORDERS.check(state.engine.role(), Command::CreateOrder)?;
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

#[utoipa::path(
    patch,
    path = "/api/v1/orders/{id}",
    tag = "orders",
    operation_id = "patchOrder",
    summary = "Edit an order",
    description = "Each field present replaces the whole field. Refused (409) once the store \
                   knows fulfillment has left `pending`/`on_hold`, or after a cancel was \
                   requested.",
    params(OrderIdParam),
    request_body = PatchOrderInput,
    responses(
        (status = 200, description = "The order, edited.", body = StoreOrder),
        BadIdOrBody,
        NoOrder,
        (status = 409, description = "The order can no longer be edited.", body = Problem,
         content_type = PROBLEM),
        (status = 422, description = "Invalid values, or no field to change; `errors` lists \
                                      each.", body = Problem, content_type = PROBLEM),
        JsonBody,
        Writes,
        Bearer,
    )
)]
async fn patch(
    State(state): State<AppState>,
    Caller { actor, .. }: Caller,
    OrderPath(id): OrderPath,
    body: axum::extract::Request,
) -> ApiResult<Response> {
    route::ORDER.check(state.engine.role(), Command::EditOrder)?;
    let ApiJson { value, .. } = <ApiJson<PatchOrderInput> as axum::extract::FromRequest<
        AppState,
    >>::from_request(body, &state)
    .await?;
    let v = state.engine.patch_order(&actor, id, &value).await?;
    Ok(respond(&state, StatusCode::OK, &v))
}

#[utoipa::path(
    delete,
    path = "/api/v1/orders/{id}",
    tag = "orders",
    operation_id = "deleteOrder",
    summary = "Never allowed",
    description = "Orders are never deleted: always 405 for a valid id, whether or not the \
                   order exists. The store can request cancellation instead.",
    params(OrderIdParam),
    responses(
        BadId,
        (status = 405, description = "Orders are never deleted; `Allow` lists the methods \
                                      this side serves here.", body = Problem,
         content_type = PROBLEM, headers(("Allow" = String, description = "The methods this side serves on this path."))),
        Bearer,
    )
)]
async fn delete(
    State(state): State<AppState>,
    _caller: Caller,
    // Extracting it checks the id: a bad one is 400, before the 405.
    _id: OrderPath,
) -> ApiResult<Response> {
    Err(ApiError::MethodNotAllowed {
        detail: "orders are never deleted; the store can request cancellation with POST /api/v1/orders/{id}/cancel".into(),
        allow: Some(route::ORDER.allow(state.engine.role())),
    })
}

#[derive(Deserialize, Default, ToSchema)]
#[schema(as = CancelRequest)]
#[serde(deny_unknown_fields)]
pub(super) struct CancelBody {
    #[schema(schema_with = crate::domain::schema::optional_text)]
    #[serde(default)]
    reason: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/cancel",
    tag = "orders",
    operation_id = "cancelOrder",
    summary = "Request cancellation",
    description = "Asks the warehouse to cancel; it cancels unless the order was already \
                   shipped, and both outcomes sync back. Repeating it is a no-op 200. The body \
                   is optional: an empty request (no Content-Type, or Content-Length 0) is a \
                   cancel without a reason.",
    params(OrderIdParam),
    // By reference, so that the body is optional without being nullable
    // (`openapi::base` adds the schema where this operation is served).
    request_body(
        content = ref("#/components/schemas/CancelRequest"),
        content_type = "application/json",
        description = "Optional: the reason of the cancellation."
    ),
    responses(
        (status = 200, description = "The order, with `status: cancel_requested`.",
         body = StoreOrder),
        BadIdOrBody,
        NoOrder,
        (status = 422, description = "The reason is invalid, or the body has an unknown field.",
         body = Problem, content_type = PROBLEM),
        JsonBody,
        Writes,
        Bearer,
    )
)]
async fn cancel(
    State(state): State<AppState>,
    Caller { actor, .. }: Caller,
    OrderPath(id): OrderPath,
    body: axum::extract::Request,
) -> ApiResult<Response> {
    route::CANCEL.check(state.engine.role(), Command::RequestCancel)?;
    // The body is optional: an empty POST is a cancel without a reason; a
    // body, when sent, must be JSON like any other.
    let OptionalJson(body) =
        <OptionalJson<CancelBody> as axum::extract::FromRequest<AppState>>::from_request(
            body, &state,
        )
        .await?;
    let reason = match body {
        Some(b) => optional_text("reason", b.reason.as_deref(), MAX_TEXT)
            .map_err(|e| ApiError::invalid(vec![e]))?,
        None => None,
    };
    let v = state.engine.request_cancel(&actor, id, reason).await?;
    Ok(respond(&state, StatusCode::OK, &v))
}

/// `POST /orders/{id}/route` takes no field: an empty body or `{}`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NoFields {}

#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/route",
    tag = "orders",
    operation_id = "routeOrder",
    summary = "Route the unrouted lines again",
    description = "Routes the lines no warehouse took (see `routing.unrouted_lines`) among the \
                   warehouses as they are now: each joins its warehouse's part that has not \
                   started, or makes a new part, and is sent. Parts already routed are not \
                   touched; lines still without a warehouse stay unrouted with the reason. An \
                   order whose cancellation was requested is left alone. No body (or `{}`).",
    params(OrderIdParam),
    responses(
        (status = 200, description = "The order, routed as far as the warehouses allow.",
         body = StoreOrder),
        BadIdOrBody,
        NoOrder,
        (status = 422, description = "The body has a field (it takes none).",
         body = Problem, content_type = PROBLEM),
        JsonBody,
        Writes,
        Bearer,
    )
)]
async fn route_again(
    State(state): State<AppState>,
    Caller { actor, .. }: Caller,
    OrderPath(id): OrderPath,
    body: axum::extract::Request,
) -> ApiResult<Response> {
    route::ROUTE.check(state.engine.role(), Command::RouteOrder)?;
    <OptionalJson<NoFields> as axum::extract::FromRequest<AppState>>::from_request(body, &state)
        .await?;
    let v = state.engine.route_order(&actor, id).await?;
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

/// The documented shape of a fulfillment request: one variant per action
/// `Action::parse` takes. (The handler reads the lax [`FulfillmentBody`],
/// so every problem is reported as a field error; a unit test checks that
/// both agree.)
#[derive(ToSchema)]
#[schema(
    as = FulfillmentRequest,
    example = json!({"status": "shipped", "carrier": "UPS", "tracking_number": "1Z999"})
)]
#[serde(tag = "status", rename_all = "snake_case")]
#[allow(dead_code)]
pub enum FulfillmentRequest {
    /// pending → picking.
    Picking,
    /// picking → packed.
    Packed,
    /// packed (or partially_shipped) → shipped: everything left, in one
    /// parcel with this carrier and tracking number.
    Shipped {
        #[schema(schema_with = crate::domain::schema::short_text)]
        carrier: String,
        #[schema(schema_with = crate::domain::schema::short_text)]
        tracking_number: String,
    },
    /// Put on hold (from pending, picking, packed or partially_shipped),
    /// with a reason.
    OnHold {
        #[schema(schema_with = crate::domain::schema::text)]
        reason: String,
    },
    /// Back to the status the hold left.
    Released,
}

#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/fulfillment",
    tag = "orders",
    operation_id = "changeFulfillment",
    summary = "Move an order through fulfillment",
    description = "pending → picking → packed → shipped (everything left, in one parcel; \
                   also from partially_shipped); `on_hold` (with a reason) from pending, \
                   picking, packed or partially_shipped; `released` returns to the status the \
                   hold left. Parcels of chosen quantities: `POST /api/v1/orders/{id}/shipments`. \
                   Any other move is 409 naming the current status. Unknown fields are \
                   refused; fields that do not belong to the chosen status are ignored.",
    params(OrderIdParam),
    request_body = FulfillmentRequest,
    responses(
        (status = 200, description = "The order, moved.", body = WarehouseOrder),
        BadIdOrBody,
        NoOrder,
        (status = 409, description = "The transition is not allowed from the current status.",
         body = Problem, content_type = PROBLEM),
        (status = 422, description = "Unknown status, a missing carrier, tracking_number or \
                                      reason, or an unknown field.",
         body = Problem, content_type = PROBLEM),
        JsonBody,
        Writes,
        Bearer,
    )
)]
async fn fulfillment(
    State(state): State<AppState>,
    Caller { actor, .. }: Caller,
    OrderPath(id): OrderPath,
    body: axum::extract::Request,
) -> ApiResult<Response> {
    route::FULFILLMENT.check(state.engine.role(), Command::ChangeFulfillment)?;
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

/// `POST /orders/{id}/shipments`, read laxly so that every problem is a
/// field error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParcelBody {
    #[serde(default)]
    carrier: Option<String>,
    #[serde(default)]
    tracking_number: Option<String>,
    #[serde(default)]
    lines: Vec<ParcelLineBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParcelLineBody {
    #[serde(default)]
    sku: Option<String>,
    #[serde(default)]
    quantity: Option<i64>,
}

/// `[{sku, quantity}]` of a parcel or a rejection, as the domain's parsers
/// take them.
fn requested(lines: &[ParcelLineBody]) -> Vec<(Option<&str>, Option<i64>)> {
    lines
        .iter()
        .map(|l| (l.sku.as_deref(), l.quantity))
        .collect()
}

/// The documented shape of a parcel.
#[derive(ToSchema)]
#[schema(
    as = ParcelRequest,
    example = json!({"carrier": "UPS", "tracking_number": "1Z999",
                     "lines": [{"sku": "WID-1", "quantity": 1}]})
)]
#[allow(dead_code)]
pub struct ParcelRequest {
    #[schema(schema_with = crate::domain::schema::short_text)]
    carrier: String,
    #[schema(schema_with = crate::domain::schema::short_text)]
    tracking_number: String,
    /// What is in the parcel: each SKU once, at most what is left of it.
    #[schema(min_items = 1, max_items = 1000)]
    lines: Vec<ParcelLineRequest>,
}

#[derive(ToSchema)]
#[schema(as = ParcelLine)]
#[allow(dead_code)]
pub struct ParcelLineRequest {
    #[schema(schema_with = crate::domain::schema::short_text)]
    sku: String,
    #[schema(schema_with = crate::domain::schema::quantity)]
    quantity: u32,
}

#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/shipments",
    tag = "orders",
    operation_id = "shipParcel",
    summary = "Ship a parcel of chosen quantities",
    description = "While the order is picking, packed or partially_shipped: ships these \
                   quantities in one parcel. The order becomes `shipped` once nothing is left, \
                   else `partially_shipped`. More of a SKU than is left to ship, or any other \
                   status, is 409; a SKU the order does not hold is 422 naming the line.",
    params(OrderIdParam),
    request_body = ParcelRequest,
    responses(
        (status = 201, description = "The parcel.", body = crate::http::views::ShipmentJson),
        BadIdOrBody,
        NoOrder,
        (status = 409, description = "Not while the order is in this status, or more than is \
                                      left to ship.",
         body = Problem, content_type = PROBLEM),
        (status = 422, description = "A missing or invalid field, a SKU the order does not \
                                      hold, or an unknown field.",
         body = Problem, content_type = PROBLEM),
        JsonBody,
        Writes,
        Bearer,
    )
)]
async fn ship_parcel(
    State(state): State<AppState>,
    Caller { actor, .. }: Caller,
    OrderPath(id): OrderPath,
    body: axum::extract::Request,
) -> ApiResult<Response> {
    route::SHIPMENTS.check(state.engine.role(), Command::ChangeFulfillment)?;
    let ApiJson { value: b, .. } =
        <ApiJson<ParcelBody> as axum::extract::FromRequest<AppState>>::from_request(body, &state)
            .await?;
    let lines = requested(&b.lines);
    let action = Action::parcel(b.carrier.as_deref(), b.tracking_number.as_deref(), &lines)
        .map_err(ApiError::invalid)?;
    let v = state.engine.transition(&actor, id, action).await?;
    tracing::info!(order_id = %id, status = %v.order.fulfillment.as_ref().map_or("pending", |f| f.status.as_str()), "parcel shipped");
    let parcel = crate::http::views::order_shipments(&v)
        .pop()
        .ok_or(ApiError::Internal)?;
    Ok((StatusCode::CREATED, Json(parcel)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldBody {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// The documented shape of a new hold.
#[derive(ToSchema, Deserialize)]
#[schema(
    as = HoldRequest,
    example = json!({"type": "payment", "reason": "card declined; waiting for the customer"})
)]
#[allow(dead_code)]
pub struct HoldRequest {
    #[serde(rename = "type")]
    kind: HoldType,
    #[schema(schema_with = crate::domain::schema::text)]
    reason: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/holds",
    tag = "orders",
    operation_id = "placeHold",
    summary = "Hold an order (several holds may be active)",
    description = "Both sides place holds; each releases only its own. At the warehouse it holds \
                   this order (from pending, picking, packed, partially_shipped or on_hold); at \
                   the store it holds every part of the order, whose warehouse then picks, packs \
                   and ships nothing (409) until the store releases it. The order is `on_hold` \
                   while any hold is active.",
    params(OrderIdParam),
    request_body = HoldRequest,
    responses(
        (status = 201, description = "The hold.", body = HoldJson),
        BadIdOrBody,
        NoOrder,
        (status = 409, description = "Not in this status (shipped, cancelled, cancel \
                                      requested…), or too many holds.",
         body = Problem, content_type = PROBLEM),
        (status = 422, description = "A missing or unknown `type`, a missing `reason`, or an \
                                      unknown field.",
         body = Problem, content_type = PROBLEM),
        JsonBody,
        Writes,
        Bearer,
    )
)]
async fn place_hold(
    State(state): State<AppState>,
    Caller { actor, .. }: Caller,
    OrderPath(id): OrderPath,
    body: axum::extract::Request,
) -> ApiResult<Response> {
    let ApiJson { value: b, .. } =
        <ApiJson<HoldBody> as axum::extract::FromRequest<AppState>>::from_request(body, &state)
            .await?;
    let (kind, reason) =
        parse_hold(b.kind.as_deref(), b.reason.as_deref()).map_err(ApiError::invalid)?;
    let engine = &state.engine;
    let (v, hold) = match engine.role() {
        Role::Store => engine.place_hold(&actor, id, kind, reason).await?,
        Role::Warehouse => {
            let v = engine
                .transition(&actor, id, Action::PlaceHold { kind, reason })
                .await?;
            let hold = v
                .order
                .fulfillment
                .as_ref()
                .and_then(|f| f.holds.last().cloned())
                .ok_or(ApiError::Internal)?;
            (v, hold)
        }
    };
    tracing::info!(order_id = %v.order.id, hold_type = kind.as_str(), "hold placed");
    Ok((StatusCode::CREATED, Json(HoldJson::from(&hold))).into_response())
}

/// Releases a hold this side placed (the handlers of each side's
/// document, [`release_at_store`] and [`release_at_warehouse`], come here).
async fn release(
    state: &AppState,
    actor: &Actor,
    HoldPath(id, hold): HoldPath,
    body: axum::extract::Request,
) -> ApiResult<Response> {
    <OptionalJson<NoFields> as axum::extract::FromRequest<AppState>>::from_request(body, state)
        .await?;
    let engine = &state.engine;
    let v = match engine.role() {
        Role::Store => engine.release_hold(actor, id, hold).await?,
        Role::Warehouse => {
            engine
                .transition(actor, id, Action::ReleaseHold { id: hold })
                .await?
        }
    };
    tracing::info!(order_id = %id, hold_id = %hold, "hold released");
    Ok(respond(state, StatusCode::OK, &v))
}

#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/holds/{hold_id}/release",
    tag = "orders",
    operation_id = "releaseHold",
    summary = "Release a hold the store placed",
    description = "Releases the hold on every part; a part with no other active hold goes \
                   back, at its warehouse, to the status it left. A hold a warehouse placed is \
                   that warehouse's to release (409). No body (or `{}`).",
    params(HoldIdParams),
    responses(
        (status = 200, description = "The order.", body = StoreOrder),
        (status = 400, description = "An id is not a UUID, or the body is not JSON.",
         body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such order, or no such hold on it.",
         body = Problem, content_type = PROBLEM),
        (status = 409, description = "A warehouse's hold, or already released.",
         body = Problem, content_type = PROBLEM),
        (status = 422, description = "The body has a field (it takes none).",
         body = Problem, content_type = PROBLEM),
        JsonBody,
        Writes,
        Bearer,
    )
)]
async fn release_at_store(
    State(state): State<AppState>,
    Caller { actor, .. }: Caller,
    path: HoldPath,
    body: axum::extract::Request,
) -> ApiResult<Response> {
    release(&state, &actor, path, body).await
}

#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/holds/{hold_id}/release",
    tag = "orders",
    operation_id = "releaseHold",
    summary = "Release a hold this warehouse placed",
    description = "With no other active hold, the order goes back to the status it left. A \
                   hold the store placed is the store's to release (409). No body (or `{}`).",
    params(HoldIdParams),
    responses(
        (status = 200, description = "The order.", body = WarehouseOrder),
        (status = 400, description = "An id is not a UUID, or the body is not JSON.",
         body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such order, or no such hold on it.",
         body = Problem, content_type = PROBLEM),
        (status = 409, description = "The store's hold, or already released.",
         body = Problem, content_type = PROBLEM),
        (status = 422, description = "The body has a field (it takes none).",
         body = Problem, content_type = PROBLEM),
        JsonBody,
        Writes,
        Bearer,
    )
)]
async fn release_at_warehouse(
    State(state): State<AppState>,
    Caller { actor, .. }: Caller,
    path: HoldPath,
    body: axum::extract::Request,
) -> ApiResult<Response> {
    release(&state, &actor, path, body).await
}

/// `POST /orders/{id}/reject`, read laxly so that every problem is a
/// field error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RejectBody {
    #[serde(default)]
    lines: Vec<ParcelLineBody>,
    #[serde(default)]
    reason: Option<String>,
}

/// The documented shape of a rejection.
#[derive(ToSchema)]
#[schema(
    as = RejectRequest,
    example = json!({"lines": [{"sku": "WID-1", "quantity": 1}], "reason": "out of stock"})
)]
#[allow(dead_code)]
pub struct RejectRequest {
    /// What is refused: each SKU once, at most what the order holds of it.
    #[schema(min_items = 1, max_items = 1000)]
    lines: Vec<ParcelLineRequest>,
    #[schema(schema_with = crate::domain::schema::text)]
    reason: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/reject",
    tag = "orders",
    operation_id = "rejectLines",
    summary = "Refuse lines (out of stock, say)",
    description = "While the order is pending (or on hold from pending): these quantities leave \
                   it and go back to the store, which routes them to the next warehouse that \
                   takes them, or leaves them unrouted with the reason. Each line shows what was \
                   refused in `rejected_quantity`; an order left with nothing ends `rejected`. \
                   More than the order holds, or any other status, is 409; a SKU it does not \
                   hold is 422 naming the line.",
    params(OrderIdParam),
    request_body = RejectRequest,
    responses(
        (status = 200, description = "The order, without the refused quantities.",
         body = WarehouseOrder),
        BadIdOrBody,
        NoOrder,
        (status = 409, description = "Not in this status, or more than the order holds.",
         body = Problem, content_type = PROBLEM),
        (status = 422, description = "A missing or invalid field, a SKU the order does not \
                                      hold, or an unknown field.",
         body = Problem, content_type = PROBLEM),
        JsonBody,
        Writes,
        Bearer,
    )
)]
async fn reject(
    State(state): State<AppState>,
    Caller { actor, .. }: Caller,
    OrderPath(id): OrderPath,
    body: axum::extract::Request,
) -> ApiResult<Response> {
    route::REJECT.check(state.engine.role(), Command::ChangeFulfillment)?;
    let ApiJson { value: b, .. } =
        <ApiJson<RejectBody> as axum::extract::FromRequest<AppState>>::from_request(body, &state)
            .await?;
    let lines = requested(&b.lines);
    let action = Action::reject(&lines, b.reason.as_deref()).map_err(ApiError::invalid)?;
    let v = state.engine.transition(&actor, id, action).await?;
    tracing::info!(order_id = %id, lines = lines.len(), "lines rejected");
    Ok(respond(&state, StatusCode::OK, &v))
}

#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}/audit",
    tag = "orders",
    operation_id = "getOrderAudit",
    summary = "Every change to the order, oldest first",
    params(OrderIdParam),
    responses(
        (status = 200, description = "The audit trail.", body = AuditList),
        BadId,
        NoOrder,
        Bearer,
    )
)]
async fn audit(
    State(state): State<AppState>,
    _caller: Caller,
    OrderPath(id): OrderPath,
) -> ApiResult<Response> {
    let trail = state.engine.audit(id).await?;
    let items = trail
        .iter()
        .map(|t| AuditEntry {
            at: crate::storage::from_micros(t.entry.at),
            actor: ActorJson {
                kind: &t.entry.actor_kind,
                name: &t.entry.actor_name,
            },
            changes: t.entry.change_list(),
            diff: t.entry.diff(),
            part: t.part.as_ref().map(|p| AuditPart {
                part: p.part,
                warehouse: &p.warehouse,
            }),
        })
        .collect();
    Ok(Json(AuditList { items }).into_response())
}

/// How many delivery attempts the timeline shows.
const TIMELINE_LIMIT: i64 = 100;

#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}/sync",
    tag = "sync",
    operation_id = "getOrderSync",
    summary = "The order's delivery timeline, newest first",
    description = "At most the last 100 delivery attempts.",
    params(OrderIdParam),
    responses(
        (status = 200, description = "Sync state and attempts.", body = SyncTimeline),
        BadId,
        NoOrder,
        Bearer,
    )
)]
async fn sync_timeline(
    State(state): State<AppState>,
    _caller: Caller,
    OrderPath(id): OrderPath,
) -> ApiResult<Response> {
    let v = state.engine.get(id).await?;
    let attempts = state.engine.attempts(id, TIMELINE_LIMIT).await?;
    let attempts = attempts
        .iter()
        .map(|a| Attempt {
            at: crate::storage::from_micros(a.at),
            outcome: &a.outcome,
            detail: a.detail.as_deref(),
            next_retry_at: a.next_retry_at.map(crate::storage::from_micros),
        })
        .collect();
    Ok(Json(SyncTimeline {
        state: v.sync.state,
        store_version: v.order.store_version,
        warehouse_version: v.order.warehouse_version,
        last_error: v.sync.last_error.as_deref(),
        attempts,
    })
    .into_response())
}

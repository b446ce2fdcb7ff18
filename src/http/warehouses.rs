//! `/api/v1/warehouses/**` (store only): list, add, read and change the
//! warehouses the store routes orders to, each with how delivery to it is
//! going. A warehouse is never deleted (`DELETE` is 405): it is
//! deactivated. Its secret goes in and never comes out: no answer carries
//! it or anything made from it.
//!
//! The role rules decide who serves these: the warehouse routes them and
//! answers 405 ([`super::routes::Api::runs`]).

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::{ObjectBuilder, Required};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiJson, Caller};
use super::openapi::{Bearer, JsonBody, PROBLEM, Writes};
use super::routes::{self as route, Api};
use super::views::{DeliveryStatus, WarehouseDelivery, WarehouseJson, WarehouseList};
use crate::domain::FieldError;
use crate::domain::role::Command;
use crate::domain::warehouse::{Warehouse, WarehouseInput};
use crate::engine::{EngineError, OutboxStatus};
use crate::storage::now_micros;

/// The warehouse routes (the store's; the warehouse refuses them).
pub fn routes(api: Api) -> Api {
    let manage = Command::ManageWarehouses;
    api.runs(&route::WAREHOUSES, manage, routes!(list, add))
        .runs(&route::WAREHOUSE, manage, routes!(get_one, change))
        .never(&route::WAREHOUSE, manage, routes!(delete))
}

/// Every warehouse with how delivery to it is going, by name: one read
/// of the warehouses, one of the outbox.
pub async fn with_delivery(state: &AppState) -> ApiResult<Vec<(Warehouse, DeliveryStatus)>> {
    Ok(with_delivery_and_total(state).await?.0)
}

/// [`with_delivery`], and the outbox towards every peer summed from the
/// same read, so that the totals are the sum of the parts.
async fn with_delivery_and_total(
    state: &AppState,
) -> ApiResult<(Vec<(Warehouse, DeliveryStatus)>, OutboxStatus)> {
    let list = state.engine.warehouses().await?;
    let mut outbox = state.engine.outbox_status_by_peer().await?;
    let total = sum(outbox.values());
    let now = now_micros();
    let each = list
        .into_iter()
        .map(|w| {
            let o = outbox.remove(w.name.as_str()).unwrap_or_default();
            let d = delivery(state, w.name.as_str(), &o, now);
            (w, d)
        })
        .collect();
    Ok((each, total))
}

/// Several peers' outboxes as one: counts added, the oldest pending, the
/// latest delivery.
fn sum<'a>(each: impl Iterator<Item = &'a OutboxStatus>) -> OutboxStatus {
    each.fold(OutboxStatus::default(), |a, o| OutboxStatus {
        pending: a.pending + o.pending,
        dead: a.dead + o.dead,
        oldest_pending_at: match (a.oldest_pending_at, o.oldest_pending_at) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        },
        last_delivered_at: a.last_delivered_at.max(o.last_delivered_at),
    })
}

/// The outbox towards every peer summed, and at the store each
/// warehouse's delivery, for `GET /api/v1/sync/status`. At the store both
/// come from one read of the outbox, so that the sums are the sums of
/// the warehouses shown; the warehouse has no warehouses (`None`).
pub async fn deliveries(
    state: &AppState,
) -> ApiResult<(OutboxStatus, Option<Vec<WarehouseDelivery>>)> {
    if !state.engine.role().may(Command::ManageWarehouses) {
        return Ok((state.engine.outbox_status().await?, None));
    }
    let (each, total) = with_delivery_and_total(state).await?;
    Ok((
        total,
        Some(
            each.into_iter()
                .map(|(w, delivery)| WarehouseDelivery {
                    name: w.name.to_string(),
                    delivery,
                })
                .collect(),
        ),
    ))
}

/// How delivery to `peer` is going: its outbox, and its breaker with the
/// breaker's last error.
fn delivery(state: &AppState, peer: &str, outbox: &OutboxStatus, now: i64) -> DeliveryStatus {
    let breaker = state.peers.get(peer);
    DeliveryStatus::new(
        outbox,
        breaker
            .as_ref()
            .map_or(crate::sync::breaker::BreakerState::Closed, |b| b.state()),
        breaker.and_then(|b| b.last_error()),
        now,
    )
}

/// One warehouse as answered, with its delivery.
async fn answer(state: &AppState, status: StatusCode, w: &Warehouse) -> ApiResult<Response> {
    let outbox = state.engine.outbox_status_of(w.name.as_str()).await?;
    let d = delivery(state, w.name.as_str(), &outbox, now_micros());
    Ok((status, Json(WarehouseJson::new(w, d))).into_response())
}

/// The warehouse a sync request's body names (`"warehouse": "eu"`),
/// checked: 422 naming `warehouse` when this side has no warehouses (the
/// warehouse service) or none has that name. It is a value in the body,
/// not the resource of the path, hence 422 and not 404.
pub async fn named(state: &AppState, name: Option<String>) -> ApiResult<Option<String>> {
    let Some(name) = name else {
        return Ok(None);
    };
    match state.engine.warehouse(&name).await {
        Ok(w) => Ok(Some(w.name.to_string())),
        Err(EngineError::UnknownWarehouse(_)) => Err(ApiError::field(
            "warehouse",
            format!("no warehouse is named {name:?}; GET /api/v1/warehouses lists them"),
        )),
        Err(EngineError::WrongRole(e)) => Err(ApiError::field(
            "warehouse",
            format!("{e}; leave it out here"),
        )),
        Err(e) => Err(e.into()),
    }
}

/// The `{name}` of `/api/v1/warehouses/{name}`, as sent. Any text is a
/// name to look up (one that breaks the naming rule names no warehouse:
/// 404); only a segment that is not UTF-8 is a 400, naming `name`.
pub struct WarehousePath(pub String);

impl FromRequestParts<AppState> for WarehousePath {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(name)) => Ok(WarehousePath(name)),
            Err(e) => Err(ApiError::BadField(FieldError::new(
                "name",
                format!("cannot be read: {}", e.body_text()),
            ))),
        }
    }
}

/// The `{name}` path parameter.
pub struct NameParam;

impl IntoParams for NameParam {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            ParameterBuilder::new()
                .name("name")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(
                    "The warehouse's name. A name no warehouse has is answered 404.",
                ))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(utoipa::openapi::Type::String)
                        .pattern(Some(crate::domain::schema::warehouse_name_pattern())),
                ))
                .build(),
        ]
    }
}

// The body of `POST /api/v1/warehouses`, as documented. The handler reads
// [`WarehouseInput`], whose fields are all optional, so that a missing one
// is reported by its name; a unit test checks that both list the same
// fields.
/// A new warehouse: `name` and `url` are required; a field that is null or
/// left out takes its default.
#[derive(ToSchema)]
#[schema(as = NewWarehouse)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct NewWarehouse {
    /// 1 to 32 of a-z, 0-9 and -.
    #[schema(schema_with = crate::domain::schema::warehouse_name)]
    name: String,
    /// Base URL of the warehouse service.
    #[schema(schema_with = crate::domain::schema::warehouse_url)]
    url: String,
    #[schema(schema_with = crate::domain::schema::countries)]
    countries: Option<Vec<String>>,
    #[schema(schema_with = crate::domain::schema::sku_prefixes)]
    sku_prefixes: Option<Vec<String>>,
    #[schema(schema_with = crate::domain::schema::priority)]
    priority: Option<i64>,
    /// Inactive: no lines are routed there. Default: active.
    active: Option<bool>,
    #[schema(schema_with = crate::domain::schema::secret)]
    secret: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/warehouses",
    tag = "warehouses",
    operation_id = "listWarehouses",
    summary = "The store's warehouses, by name",
    description = "Each with its routing settings and how delivery to it is going. Never a \
                   secret.",
    responses(
        (status = 200, description = "Every warehouse.", body = WarehouseList),
        Bearer,
    )
)]
async fn list(State(state): State<AppState>, _caller: Caller) -> ApiResult<Response> {
    route::WAREHOUSES.check(state.engine.role(), Command::ManageWarehouses)?;
    let (warehouses, syncs): (Vec<_>, Vec<_>) = with_delivery(&state).await?.into_iter().unzip();
    let items = warehouses
        .iter()
        .zip(syncs)
        .map(|(w, d)| WarehouseJson::new(w, d))
        .collect();
    Ok(Json(WarehouseList { items }).into_response())
}

#[utoipa::path(
    post,
    path = "/api/v1/warehouses",
    tag = "warehouses",
    operation_id = "addWarehouse",
    summary = "Add a warehouse",
    description = "Its relay starts at once (no restart). `secret` is the one the warehouse \
                   signs with (default: the store's own `--sync-secret`); it is never shown.",
    request_body = NewWarehouse,
    responses(
        (status = 201, description = "The warehouse, added.", body = WarehouseJson,
         headers(("Location" = String, description = "The warehouse's URL."))),
        (status = 400, description = "The body is not valid JSON.", body = Problem,
         content_type = PROBLEM),
        (status = 409, description = "A warehouse of that name exists.", body = Problem,
         content_type = PROBLEM),
        (status = 422, description = "Invalid values or unknown fields; `errors` names each \
                                      (`countries[1]`, ...).",
         body = Problem, content_type = PROBLEM),
        JsonBody,
        Writes,
        Bearer,
    )
)]
async fn add(
    State(state): State<AppState>,
    _caller: Caller,
    body: axum::extract::Request,
) -> ApiResult<Response> {
    route::WAREHOUSES.check(state.engine.role(), Command::ManageWarehouses)?;
    let ApiJson { value, .. } = ApiJson::<WarehouseInput>::from_request(body, &state).await?;
    let w = state.engine.add_warehouse(&value).await?;
    tracing::info!(warehouse = %w.name, url = %w.url, "warehouse added");
    let mut res = answer(&state, StatusCode::CREATED, &w).await?;
    if let Ok(v) = format!("/api/v1/warehouses/{}", w.name).parse() {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

#[utoipa::path(
    get,
    path = "/api/v1/warehouses/{name}",
    tag = "warehouses",
    operation_id = "getWarehouse",
    summary = "One warehouse",
    params(NameParam),
    responses(
        (status = 200, description = "The warehouse.", body = WarehouseJson),
        (status = 400, description = "The name in the path cannot be read.", body = Problem,
         content_type = PROBLEM),
        (status = 404, description = "No warehouse has this name.", body = Problem,
         content_type = PROBLEM),
        Bearer,
    )
)]
async fn get_one(
    State(state): State<AppState>,
    _caller: Caller,
    WarehousePath(name): WarehousePath,
) -> ApiResult<Response> {
    route::WAREHOUSE.check(state.engine.role(), Command::ManageWarehouses)?;
    let w = state.engine.warehouse(&name).await?;
    answer(&state, StatusCode::OK, &w).await
}

#[utoipa::path(
    patch,
    path = "/api/v1/warehouses/{name}",
    tag = "warehouses",
    operation_id = "changeWarehouse",
    summary = "Change a warehouse",
    description = "Changes only the fields the body names (null or left out: unchanged). The \
                   name cannot change. `\"active\": false` stops routing new lines there; its \
                   orders keep syncing. A new URL or secret restarts its relay at once.",
    params(NameParam),
    request_body = WarehouseInput,
    responses(
        (status = 200, description = "The warehouse, changed.", body = WarehouseJson),
        (status = 400, description = "The name in the path cannot be read, or the body is not \
                                      valid JSON.", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No warehouse has this name.", body = Problem,
         content_type = PROBLEM),
        (status = 422, description = "Invalid values or unknown fields; `errors` names each.",
         body = Problem, content_type = PROBLEM),
        JsonBody,
        Writes,
        Bearer,
    )
)]
async fn change(
    State(state): State<AppState>,
    _caller: Caller,
    WarehousePath(name): WarehousePath,
    body: axum::extract::Request,
) -> ApiResult<Response> {
    route::WAREHOUSE.check(state.engine.role(), Command::ManageWarehouses)?;
    let ApiJson { value, .. } = ApiJson::<WarehouseInput>::from_request(body, &state).await?;
    let w = state.engine.update_warehouse(&name, &value).await?;
    tracing::info!(warehouse = %w.name, url = %w.url, active = w.active, "warehouse changed");
    answer(&state, StatusCode::OK, &w).await
}

#[utoipa::path(
    delete,
    path = "/api/v1/warehouses/{name}",
    tag = "warehouses",
    operation_id = "deleteWarehouse",
    summary = "Never allowed",
    description = "Warehouses are never deleted (their orders keep syncing): always 405, \
                   whether or not the warehouse exists. Set `\"active\": false` with PATCH \
                   instead.",
    params(NameParam),
    responses(
        (status = 400, description = "The name in the path cannot be read.", body = Problem,
         content_type = PROBLEM),
        (status = 405, description = "Warehouses are never deleted; `Allow` lists the methods \
                                      served here.", body = Problem, content_type = PROBLEM,
         headers(("Allow" = String, description = "The methods served on this path."))),
        Bearer,
    )
)]
async fn delete(
    State(state): State<AppState>,
    _caller: Caller,
    _name: WarehousePath,
) -> ApiResult<Response> {
    let role = state.engine.role();
    route::WAREHOUSE.check(role, Command::ManageWarehouses)?;
    Err(ApiError::MethodNotAllowed {
        detail: "warehouses are never deleted (their orders keep syncing); set \"active\": false \
                 with PATCH /api/v1/warehouses/{name} so that no new lines are routed there"
            .into(),
        allow: Some(route::WAREHOUSE.allow(role)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn properties<T: utoipa::PartialSchema>() -> Vec<String> {
        let v = serde_json::to_value(T::schema()).unwrap_or_default();
        let mut names: Vec<String> = v["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Several outboxes summed: counts added, the oldest pending, the
    /// latest delivery; nothing summed is all zero.
    #[test]
    fn outboxes_sum_as_the_whole_outbox_reads() {
        let o = |pending, dead, oldest, last| OutboxStatus {
            pending,
            dead,
            oldest_pending_at: oldest,
            last_delivered_at: last,
        };
        let all = [
            o(2, 0, Some(30), None),
            o(0, 1, None, Some(50)),
            o(1, 3, Some(20), Some(40)),
        ];
        let s = sum(all.iter());
        assert_eq!(
            (s.pending, s.dead, s.oldest_pending_at, s.last_delivered_at),
            (3, 4, Some(20), Some(50))
        );
        let none = sum([].iter());
        assert_eq!(
            (
                none.pending,
                none.dead,
                none.oldest_pending_at,
                none.last_delivered_at
            ),
            (0, 0, None, None)
        );
    }

    /// The documented body of a new warehouse names the fields the handler
    /// reads, and requires the two `WarehouseInput::create` requires.
    #[test]
    fn the_documented_new_warehouse_is_what_the_handler_reads() {
        assert_eq!(properties::<NewWarehouse>(), properties::<WarehouseInput>());
        let doc = serde_json::to_value(<NewWarehouse as utoipa::PartialSchema>::schema())
            .unwrap_or_default();
        assert_eq!(doc["required"], serde_json::json!(["name", "url"]));
        let missing = WarehouseInput::default()
            .create()
            .map(|_| ())
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect::<Vec<_>>();
        assert_eq!(missing, ["name", "url"]);
    }
}

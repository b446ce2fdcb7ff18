//! The OpenAPI 3.1 document of each role's HTTP API, served at
//! `GET /api/v1/openapi.json`, generated with utoipa.
//!
//! Nothing here lists routes or answer fields. Each handler carries its
//! documentation (`#[utoipa::path]`: method, path, parameters, body, every
//! status it can answer) and is registered together with it
//! (`utoipa_axum::routes!`, through [`super::routes::Api`]); the schemas are
//! derived from the types the handlers deserialise and serialise
//! ([`super::views`], [`super::error::Problem`], `domain::input`,
//! `domain::snapshot`, `sync::reconcile`), with limits from the constants
//! the parsers check (`domain::schema`). What is written here: the
//! document's title, tags and security scheme, and the error answers shared
//! by many routes ([`Bearer`], [`Signed`], ...), from the constants of the
//! code that answers them.
//!
//! Which operations a side's document lists follows the role rules: an
//! operation that runs a [`crate::domain::role::Command`] is in the
//! document of the side that runs it only. The other side still routes it
//! (it answers 405 with `Allow`, see [`super::routes`]) but does not
//! document it, so the warehouse's document has no store operation and,
//! its order schemas having no money field, names no money at all.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Ref, RefOr, Required,
};
use utoipa::{IntoParams, IntoResponses, ToSchema};

use super::error::{Problem, RETRY_AFTER_SECS};
use crate::domain::Role;
use crate::domain::delivery::SyncState;
use crate::domain::fulfillment::FulfillmentStatus;
use crate::domain::role::Command;
use crate::domain::values::MAX_TEXT;

/// The media type of every error answer.
pub const PROBLEM: &str = "application/problem+json";

/// The OpenAPI document of the API `role` serves, as JSON, with every
/// request body closed (see [`close_request_bodies`]).
pub fn document(role: Role) -> serde_json::Value {
    let mut doc = serde_json::to_value(openapi(role)).unwrap_or_default();
    close_request_bodies(&mut doc);
    doc
}

/// The OpenAPI document of the API `role` serves.
pub fn openapi(role: Role) -> OpenApi {
    super::api(role).openapi()
}

/// The document's text, made once per role: what
/// `GET /api/v1/openapi.json` answers.
pub fn document_text(role: Role) -> &'static str {
    static TEXT: [OnceLock<String>; 2] = [OnceLock::new(), OnceLock::new()];
    let i = Role::ALL.iter().position(|r| *r == role).unwrap_or(0);
    TEXT[i].get_or_init(|| serde_json::to_string(&document(role)).unwrap_or_default())
}

/// Says `additionalProperties: false` on every object a request body holds
/// (the body itself, its lines, its address, ...), which is what the
/// handlers do: each body type is `#[serde(deny_unknown_fields)]` and an
/// unknown field is a 422 naming it. Without it the document allows any
/// extra field, and a client or a fuzzer that sends one learns only from
/// the 422 (schemathesis's valid bodies were mostly that).
///
/// Done on the JSON, after utoipa: the derives cannot say it for the
/// documented shapes that are not the types deserialised (`ParcelRequest`
/// documents `ParcelBody`). Only the bodies of the API token's routes are
/// closed (not the signed peer routes', whose bodies the services write for
/// each other, and whose `IdRange` does take unknown fields), and not a
/// schema also used in answers, so that a field added to an answer is never
/// a breach of the document.
fn close_request_bodies(doc: &mut serde_json::Value) {
    use serde_json::Value;
    use std::collections::BTreeSet;

    /// The component names of the `$ref`s anywhere in `v`.
    fn refs(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    match (k.as_str(), child) {
                        ("$ref", Value::String(r)) => {
                            if let Some(name) = r.strip_prefix("#/components/schemas/") {
                                out.insert(name.to_owned());
                            }
                        }
                        _ => refs(child, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|c| refs(c, out)),
            _ => {}
        }
    }
    /// The components `roots` reach, themselves included.
    fn reach(doc: &Value, mut roots: BTreeSet<String>) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        while let Some(name) = roots.pop_first() {
            if seen.insert(name.clone()) {
                refs(&doc["components"]["schemas"][&name], &mut roots);
            }
        }
        seen
    }
    /// Closes each object schema in `v` that lists its properties,
    /// following only schema keywords (never into an example).
    fn close(v: &mut Value) {
        let Value::Object(m) = v else { return };
        if m.contains_key("properties") && !m.contains_key("additionalProperties") {
            m.insert("additionalProperties".into(), Value::Bool(false));
        }
        if let Some(Value::Object(props)) = m.get_mut("properties") {
            props.values_mut().for_each(close);
        }
        if let Some(items) = m.get_mut("items") {
            close(items);
        }
        for key in ["oneOf", "anyOf", "allOf"] {
            if let Some(Value::Array(a)) = m.get_mut(key) {
                a.iter_mut().for_each(close);
            }
        }
    }

    let mut bodies = Vec::new();
    let mut answers = BTreeSet::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            let Some(ops) = item.as_object() else {
                continue;
            };
            for (method, op) in ops {
                // `security: []`: a signed peer route, whose body the
                // services write for each other.
                let signed = op["security"].as_array().is_some_and(Vec::is_empty);
                if op["requestBody"]["content"].is_object() && !signed {
                    bodies.push((path.clone(), method.clone()));
                }
                refs(&op["responses"], &mut answers);
            }
        }
    }
    let mut in_bodies = BTreeSet::new();
    for (path, method) in &bodies {
        refs(&doc["paths"][path][method]["requestBody"], &mut in_bodies);
    }
    let answers = reach(doc, answers);
    let closed: Vec<String> = reach(doc, in_bodies)
        .into_iter()
        .filter(|name| !answers.contains(name))
        .collect();
    for name in closed {
        if let Some(schema) = doc["components"]["schemas"].get_mut(&name) {
            close(schema);
        }
    }
    for (path, method) in bodies {
        if let Some(contents) =
            doc["paths"][&path][&method]["requestBody"]["content"].as_object_mut()
        {
            for content in contents.values_mut() {
                // A `$ref` is closed above; an inline schema here.
                close(&mut content["schema"]);
            }
        }
    }
}

/// What a side's document holds before its routes are registered: title,
/// description, tags, the bearer scheme (required by every operation that
/// does not say otherwise), and the schemas that routes refer to by name
/// only.
pub fn base(role: Role) -> OpenApi {
    let (title, description) = match role {
        Role::Store => (
            "fulfillment store API",
            "The store takes orders (with prices), edits them until the warehouse starts \
             on them, and requests cancellation. Money is integer minor units. Errors are \
             application/problem+json; `errors` lists every invalid field of a 422. \
             Operations that only the warehouse runs are not listed here: the store \
             answers them 405, with the methods it does serve in `Allow`.",
        ),
        Role::Warehouse => (
            "fulfillment warehouse API",
            "The warehouse picks, packs and ships the orders the store sends it. Orders are \
             never created or edited here. Errors are application/problem+json; `errors` \
             lists every invalid field of a 422. Operations that only the store runs are \
             not listed here: the warehouse answers them 405, with the methods it does \
             serve in `Allow`.",
        ),
    };
    let tag = |name: &str, description: &str| {
        TagBuilder::new()
            .name(name)
            .description(Some(description))
            .build()
    };
    let mut schemas: Vec<(String, RefOr<utoipa::openapi::schema::Schema>)> = Vec::new();
    <Problem as ToSchema>::schemas(&mut schemas);
    schemas.push((
        Problem::name().into_owned(),
        <Problem as utoipa::PartialSchema>::schema(),
    ));
    schemas.push((
        crate::sync::reconcile::ResendItem::name().into_owned(),
        <crate::sync::reconcile::ResendItem as utoipa::PartialSchema>::schema(),
    ));
    <crate::sync::reconcile::ResendItem as ToSchema>::schemas(&mut schemas);
    schemas.push((
        crate::sync::reconcile::Range::name().into_owned(),
        <crate::sync::reconcile::Range as utoipa::PartialSchema>::schema(),
    ));
    // The batch items each side receives (`sync::ContentBatch`,
    // `sync::FulfillmentBatch` refer to them by name).
    match role {
        Role::Store => schemas.push((
            crate::domain::snapshot::FulfillmentSnapshot::name().into_owned(),
            <crate::domain::snapshot::FulfillmentSnapshot as utoipa::PartialSchema>::schema(),
        )),
        Role::Warehouse => {
            schemas.push((
                crate::domain::snapshot::ContentSnapshot::name().into_owned(),
                <crate::domain::snapshot::ContentSnapshot as utoipa::PartialSchema>::schema(),
            ));
            <crate::domain::snapshot::ContentSnapshot as ToSchema>::schemas(&mut schemas);
        }
    }
    if role.may(Command::CreateOrder) || role.may(Command::EditOrder) {
        // Referred to by name from `domain::schema::priced_lines`.
        schemas.push((
            crate::domain::input::PricedLineInput::name().into_owned(),
            <crate::domain::input::PricedLineInput as utoipa::PartialSchema>::schema(),
        ));
    }
    if role.may(Command::RequestCancel) {
        // Referred to by name from `orders::cancel`'s optional body.
        schemas.push((
            super::orders::CancelBody::name().into_owned(),
            <super::orders::CancelBody as utoipa::PartialSchema>::schema(),
        ));
    }
    if role.may(Command::Reconcile) {
        // Referred to by name from `sync::reconcile_start`'s optional body.
        schemas.push((
            super::sync::ReconcileBody::name().into_owned(),
            <super::sync::ReconcileBody as utoipa::PartialSchema>::schema(),
        ));
    }
    let components = utoipa::openapi::ComponentsBuilder::new()
        .schemas_from_iter(schemas)
        .security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token made with `fulfillment token create`."))
                    .build(),
            ),
        )
        .build();
    let mut tags = vec![
        tag("orders", "Orders as this side shows them."),
        tag("sync", "Delivery to and from the other service."),
    ];
    if role.may(Command::ManageWarehouses) {
        tags.push(tag(
            "warehouses",
            "The warehouses the store routes orders to, and delivery to each.",
        ));
    }
    tags.push(tag(
        "ops",
        "Liveness, readiness, metrics and this document.",
    ));
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title(title)
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(description))
                .build(),
        )
        .security(Some([SecurityRequirement::new(
            "bearerAuth",
            Vec::<String>::new(),
        )]))
        .tags(Some(tags))
        .components(Some(components))
        .build()
}

// ---------------------------------------------------------------------------
// Error answers shared by many routes
// ---------------------------------------------------------------------------

/// A problem+json answer.
pub fn problem(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

/// 503 with `Retry-After` ([`RETRY_AFTER_SECS`]).
fn unavailable(description: &str) -> Response {
    let mut r = problem(description);
    r.headers.insert(
        "Retry-After".into(),
        HeaderBuilder::new()
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0))
                    .examples([RETRY_AFTER_SECS]),
            ))
            .description(Some("Seconds to wait before retrying."))
            .build()
            .into(),
    );
    r
}

fn responses(list: &[(u16, Response)]) -> BTreeMap<String, RefOr<Response>> {
    list.iter()
        .map(|(status, r)| (status.to_string(), RefOr::T(r.clone())))
        .collect()
}

const TIMEOUT: &str =
    "The request took longer than 30 s (reading a slow body included) and was abandoned.";
const INTERNAL: &str = "Something went wrong on the service's side; nothing was applied.";
const DATABASE_DOWN: &str = "The database cannot be reached or does not answer in time; nothing \
                             was changed. Retry after the seconds in Retry-After.";

/// The errors every bearer-token route can answer: 401, 408, 500 and 503
/// (the token is looked up in the database before anything else, and every
/// request runs under the request timeout).
pub struct Bearer;

impl IntoResponses for Bearer {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut unauthorized = problem("Missing, malformed, unknown or revoked bearer token.");
        unauthorized.headers.insert(
            "WWW-Authenticate".into(),
            HeaderBuilder::new()
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(["Bearer"])),
                ))
                .description(Some("Always `Bearer`."))
                .build()
                .into(),
        );
        responses(&[
            (401, unauthorized),
            (408, problem(TIMEOUT)),
            (500, problem(INTERNAL)),
            (503, unavailable(DATABASE_DOWN)),
        ])
    }
}

/// The errors every signed peer route can answer: an unreadable body, a bad
/// signature, a replayed `webhook-id`, the body limit, the timeout and the
/// database's.
pub struct Signed;

impl IntoResponses for Signed {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[
            (
                400,
                problem("The body cannot be read, or is not valid JSON."),
            ),
            (
                401,
                problem("Missing or invalid signature, or a timestamp more than 300 s off."),
            ),
            (
                409,
                problem("This webhook-id was already processed (a replayed request)."),
            ),
            (408, problem(TIMEOUT)),
            (413, problem(BODY_TOO_LARGE)),
            (500, problem(INTERNAL)),
            (503, unavailable(DATABASE_DOWN)),
        ])
    }
}

const BODY_TOO_LARGE: &str = "The body is larger than 1 MiB.";

/// The errors of a route that reads a JSON body: 413 and 415.
pub struct JsonBody;

impl IntoResponses for JsonBody {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[
            (413, problem(BODY_TOO_LARGE)),
            (
                415,
                problem("The body is not sent as JSON (Content-Type: application/json)."),
            ),
        ])
    }
}

/// 507, for the routes that write.
pub struct Writes;

impl IntoResponses for Writes {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[(
            507,
            problem(
                "The database's disk is full; nothing was written. Retry once space was freed.",
            ),
        )])
    }
}

/// 400 for a path id that is not a UUID.
pub struct BadId;

impl IntoResponses for BadId {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[(400, problem("The path id is not a UUID."))])
    }
}

/// 400 for a path id that is not a UUID or a body that is not JSON.
pub struct BadIdOrBody;

impl IntoResponses for BadIdOrBody {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[(
            400,
            problem("The path id is not a UUID, or the body is not valid JSON."),
        )])
    }
}

/// 400 for a body that is not JSON.
pub struct BadBody;

impl IntoResponses for BadBody {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[(400, problem("The body is not valid JSON."))])
    }
}

/// 404 for an order id nobody knows.
pub struct NoOrder;

impl IntoResponses for NoOrder {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[(404, problem("No order with this id."))])
    }
}

/// The 408 an unauthenticated operational route can answer.
pub struct Timeout;

impl IntoResponses for Timeout {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[(408, problem(TIMEOUT))])
    }
}

/// 503 of `/readyz`.
pub struct NotReady;

impl IntoResponses for NotReady {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[(
            503,
            unavailable(
                "Not ready: the database does not take writes (unreachable, the SQLite writer \
                 stopped, its disk full, or no answer within 2 s); the detail says which.",
            ),
        )])
    }
}

// ---------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------

/// The `{id}` path parameter of `/api/v1/orders/{id}/...`.
pub struct OrderIdParam;

impl IntoParams for OrderIdParam {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            ParameterBuilder::new()
                .name("id")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(
                    "The order id (a UUID). Anything else is answered 400.",
                ))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .format(Some(SchemaFormat::Custom("uuid".into()))),
                ))
                .build(),
        ]
    }
}

/// `{id}` and `{hold_id}` of `/api/v1/orders/{id}/holds/{hold_id}/release`.
pub struct HoldIdParams;

impl IntoParams for HoldIdParams {
    fn into_params(f: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let mut out = OrderIdParam::into_params(f);
        out.push(
            ParameterBuilder::new()
                .name("hold_id")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(
                    "The hold's id (a UUID). Anything else is answered 400.",
                ))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .format(Some(SchemaFormat::Custom("uuid".into()))),
                ))
                .build(),
        );
        out
    }
}

fn query(name: &str, description: &str, schema: ObjectBuilder) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

fn names<T: serde::Serialize>(values: impl IntoIterator<Item = T>) -> Vec<String> {
    values
        .into_iter()
        .filter_map(|v| serde_json::to_value(v).ok())
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// The query parameters of `GET /api/v1/orders` at `role`, with the limits
/// `orders::ListParams::filter` checks.
fn list_params(role: Role) -> Vec<Parameter> {
    let mut statuses = match role {
        Role::Store => names([
            super::views::StoreStatus::Open,
            super::views::StoreStatus::CancelRequested,
        ]),
        Role::Warehouse => Vec::new(),
    };
    statuses.extend(names(FulfillmentStatus::ALL));
    let status_doc = match role {
        Role::Store => {
            "Only orders in this state: `open` or `cancel_requested` (the store's status), or \
             a fulfillment status the warehouse has reported."
        }
        Role::Warehouse => "Only orders with this fulfillment status.",
    };
    let string = || ObjectBuilder::new().schema_type(Type::String);
    vec![
        query(
            "limit",
            "Page size.",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .maximum(Some(super::orders::MAX_LIMIT))
                .default(Some(super::orders::DEFAULT_LIMIT.into())),
        ),
        query("cursor", "`next_cursor` of the previous page.", string()),
        query("status", status_doc, string().enum_values(Some(statuses))),
        query(
            "updated_since",
            "Only orders changed at or after this RFC 3339 time.",
            string().format(Some(SchemaFormat::KnownFormat(
                utoipa::openapi::schema::KnownFormat::DateTime,
            ))),
        ),
        query(
            "q",
            "Search: exact order number or SKU, or part of the customer's name or e-mail.",
            string().max_length(Some(MAX_TEXT)),
        ),
        query(
            "sync",
            "Only orders in this sync state towards the other service.",
            string().enum_values(Some(names(SyncState::ALL))),
        ),
    ]
}

/// The list parameters at the store.
pub struct StoreListParams;

impl IntoParams for StoreListParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        list_params(Role::Store)
    }
}

/// The list parameters at the warehouse.
pub struct WarehouseListParams;

impl IntoParams for WarehouseListParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        list_params(Role::Warehouse)
    }
}

/// The optional `Idempotency-Key` header of `POST /api/v1/orders`.
pub struct IdempotencyKeyHeader;

impl IntoParams for IdempotencyKeyHeader {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(format!(
                    "Makes retries safe: 1 to {} visible ASCII characters.",
                    super::orders::MAX_IDEMPOTENCY_KEY
                )))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length(Some(1))
                        .max_length(Some(super::orders::MAX_IDEMPOTENCY_KEY))
                        .pattern(Some("^[\\x21-\\x7e]([\\x20-\\x7e]*[\\x21-\\x7e])?$")),
                ))
                .build(),
        ]
    }
}

/// The Standard Webhooks headers of a signed peer request
/// (`sync::signature`).
pub struct WebhookHeaders;

impl IntoParams for WebhookHeaders {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        use crate::sync::signature::{
            HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, MAX_WEBHOOK_ID, TOLERANCE_SECS,
        };
        let header = |name: &str, description: String, schema: ObjectBuilder| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Header)
                .required(Required::True)
                .description(Some(description))
                .schema(Some(schema))
                .build()
        };
        let string = || ObjectBuilder::new().schema_type(Type::String);
        vec![
            header(
                HEADER_ID,
                format!(
                    "Unique per request (1 to {MAX_WEBHOOK_ID} characters); a request whose id \
                     was already seen is refused with 409 (replay protection)."
                ),
                string()
                    .min_length(Some(1))
                    .max_length(Some(MAX_WEBHOOK_ID)),
            ),
            header(
                HEADER_TIMESTAMP,
                format!(
                    "Unix seconds when the request was signed; more than {TOLERANCE_SECS} s \
                     off is refused with 401."
                ),
                string().pattern(Some("^[0-9]+$")),
            ),
            header(
                HEADER_SIGNATURE,
                "`v1,` + base64(HMAC-SHA256(secret, \"{id}.{timestamp}.{body}\")); several \
                 space-separated signatures are allowed during secret rotation."
                    .into(),
                string(),
            ),
        ]
    }
}

/// A JSON schema of "any JSON object" (the document itself).
pub fn any_object() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::Type(Type::Object))
}

// The reconciliation answers carry rows of `storage::digests` as they are.

impl utoipa::PartialSchema for crate::storage::digests::RangeDigest {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        let int =
            || {
                ObjectBuilder::new().schema_type(Type::Integer).format(Some(
                    SchemaFormat::KnownFormat(utoipa::openapi::schema::KnownFormat::Int64),
                ))
            };
        ObjectBuilder::new()
            .description(Some(
                "The orders of one range: how many, and a checksum of each side's versions.",
            ))
            .property("count", int())
            .property("store", int())
            .property("warehouse", int())
            .required("count")
            .required("store")
            .required("warehouse")
            .into()
    }
}

impl ToSchema for crate::storage::digests::RangeDigest {}

impl utoipa::PartialSchema for crate::storage::digests::Versions {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        let int =
            || {
                ObjectBuilder::new().schema_type(Type::Integer).format(Some(
                    SchemaFormat::KnownFormat(utoipa::openapi::schema::KnownFormat::Int64),
                ))
            };
        ObjectBuilder::new()
            .description(Some("Both version counters of one order."))
            .property(
                "id",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::Custom("uuid".into()))),
            )
            .property("store_version", int())
            .property("warehouse_version", int())
            .required("id")
            .required("store_version")
            .required("warehouse_version")
            .into()
    }
}

impl ToSchema for crate::storage::digests::Versions {
    fn name() -> std::borrow::Cow<'static, str> {
        "OrderVersions".into()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn both() -> [(Role, Value); 2] {
        Role::ALL.map(|r| (r, document(r)))
    }

    /// Every `$ref` string anywhere in `v`.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    match (k.as_str(), child) {
                        ("$ref", Value::String(s)) => out.push(s),
                        _ => refs(child, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|c| refs(c, out)),
            _ => {}
        }
    }

    #[test]
    fn is_openapi_3_1_json() {
        for (role, doc) in both() {
            assert_eq!(doc["openapi"], "3.1.0", "{role}");
            assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
            assert!(doc["paths"].as_object().is_some_and(|p| !p.is_empty()));
            let served: Value =
                serde_json::from_str(document_text(role)).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(served, doc, "{role}: the served text is the document");
        }
    }

    #[test]
    fn every_ref_resolves() {
        for (role, doc) in both() {
            let schemas = doc["components"]["schemas"]
                .as_object()
                .unwrap_or_else(|| panic!("{role}: no schemas"));
            let mut all = Vec::new();
            refs(&doc, &mut all);
            assert!(!all.is_empty());
            for r in all {
                let name = r
                    .strip_prefix("#/components/schemas/")
                    .unwrap_or_else(|| panic!("{role}: {r} is not a schema ref"));
                assert!(schemas.contains_key(name), "{role}: {r} does not resolve");
            }
        }
    }

    /// What a client may send is what the handlers read: every object in
    /// the body of an API token's route says `additionalProperties: false`
    /// (each body type denies unknown fields: 422). Answers, and the signed
    /// peer routes' bodies, stay open.
    #[test]
    fn request_bodies_refuse_unknown_fields() {
        let closed = |doc: &Value, name: &str| {
            doc["components"]["schemas"][name]["additionalProperties"] == json!(false)
        };
        let warehouse = document(Role::Warehouse);
        for name in [
            "ParcelRequest",
            "ParcelLine",
            "HoldRequest",
            "RejectRequest",
            "ReplayRequest",
        ] {
            assert!(closed(&warehouse, name), "warehouse {name}");
        }
        let variants = warehouse["components"]["schemas"]["FulfillmentRequest"]["oneOf"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(!variants.is_empty());
        for v in variants {
            assert_eq!(v["additionalProperties"], json!(false), "{v}");
        }
        let store = document(Role::Store);
        for name in [
            "CreateOrder",
            "CustomerInput",
            "AddressInput",
            "PricedLineInput",
            "PatchOrder",
            "CancelRequest",
            "HoldRequest",
            "NewWarehouse",
            "WarehouseChange",
            "ReconcileRequest",
        ] {
            assert!(closed(&store, name), "store {name}");
        }
        for (doc, answers) in [
            (
                &warehouse,
                ["WarehouseOrder", "WarehouseLine", "Hold", "Shipment"],
            ),
            (&store, ["StoreOrder", "StoreLine", "Hold", "Warehouse"]),
        ] {
            for name in answers
                .into_iter()
                .chain(["Problem", "SyncStatus", "AuditEntry"])
            {
                assert!(doc["components"]["schemas"][name].is_object(), "{name}");
                assert!(!closed(doc, name), "the answer {name} is closed");
            }
        }
        for (role, doc) in both() {
            assert!(!closed(&doc, "IdRange"), "{role}: a peer route's IdRange");
        }
    }

    /// The words of money (docs/DESIGN.md §5.2); none may appear anywhere
    /// in the warehouse's document, not even in a description.
    const MONEY: [&str; 9] = [
        "price",
        "total",
        "subtotal",
        "currency",
        "shipping_cost",
        "line_total",
        "unit_price",
        "amount",
        "money",
    ];

    #[test]
    fn warehouse_document_has_no_money() {
        let text = document(Role::Warehouse).to_string().to_lowercase();
        for word in MONEY {
            assert!(
                !text.contains(word),
                "the warehouse document mentions {word}"
            );
        }
        // The check can see money: the store's document has it.
        let store = document(Role::Store).to_string().to_lowercase();
        assert!(MONEY.iter().any(|w| store.contains(w)));
    }

    /// Which side documents which operation follows the role rules: an
    /// operation that runs a command is only in the document of the side
    /// that runs it.
    #[test]
    fn each_side_documents_only_its_own_commands() {
        let has = |role: Role, method: &str, path: &str| {
            document(role)["paths"][path][method].is_object()
        };
        for role in Role::ALL {
            let runs = |c| role.may(c);
            use crate::domain::role::Command::*;
            assert_eq!(
                has(role, "post", "/api/v1/orders"),
                runs(CreateOrder),
                "{role}"
            );
            assert_eq!(has(role, "patch", "/api/v1/orders/{id}"), runs(EditOrder));
            assert_eq!(
                has(role, "post", "/api/v1/orders/{id}/cancel"),
                runs(RequestCancel)
            );
            assert_eq!(
                has(role, "post", "/api/v1/orders/{id}/fulfillment"),
                runs(ChangeFulfillment)
            );
            assert_eq!(has(role, "post", "/api/v1/sync/reconcile"), runs(Reconcile));
            for (method, path) in [
                ("get", "/api/v1/orders"),
                ("get", "/api/v1/orders/{id}"),
                ("delete", "/api/v1/orders/{id}"),
                ("get", "/api/v1/sync/reconcile"),
                ("post", "/api/v1/sync/changes"),
            ] {
                assert!(has(role, method, path), "{role} {method} {path}");
            }
            // What is refused here is exactly what the other side documents
            // and this one does not.
            let api = super::super::api(role);
            for (method, path) in api.refused() {
                assert!(
                    !has(role, &method.to_lowercase(), path),
                    "{role} {method} {path}"
                );
                assert!(
                    has(role.peer(), &method.to_lowercase(), path),
                    "{method} {path}"
                );
            }
        }
    }

    #[test]
    fn store_creates_orders_with_201() {
        let doc = document(Role::Store);
        let post = &doc["paths"]["/api/v1/orders"]["post"];
        assert!(post["responses"]["201"].is_object());
        assert_eq!(
            post["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/CreateOrder"
        );
        let lines = &doc["components"]["schemas"]["CreateOrder"]["properties"]["lines"];
        assert_eq!(lines["maxItems"], crate::domain::values::MAX_LINES);
        let limit = doc["paths"]["/api/v1/orders"]["get"]["parameters"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["name"] == "limit"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(limit["schema"]["maximum"], super::super::orders::MAX_LIMIT);
    }

    #[test]
    fn bearer_routes_answer_401_and_unsigned_routes_opt_out() {
        for (role, doc) in both() {
            assert_eq!(doc["security"], json!([{"bearerAuth": []}]));
            for (path, item) in doc["paths"].as_object().into_iter().flatten() {
                for (method, op) in item.as_object().into_iter().flatten() {
                    let open = op.get("security") == Some(&json!([]));
                    let signed = [
                        "/api/v1/sync/changes",
                        "/api/v1/sync/digests",
                        "/api/v1/sync/versions",
                        "/api/v1/sync/resend",
                    ];
                    let should_be_open =
                        !path.starts_with("/api/v1/") || signed.contains(&path.as_str());
                    assert_eq!(open, should_be_open, "{role} {method} {path}");
                    if path.starts_with("/api/v1/") {
                        for status in ["401", "408", "500", "503"] {
                            assert!(
                                op["responses"][status].is_object(),
                                "{role} {method} {path}: no {status}"
                            );
                        }
                        assert!(
                            op["responses"]["503"]["headers"]["Retry-After"].is_object(),
                            "{role} {method} {path}: 503 without Retry-After"
                        );
                    }
                    if signed.contains(&path.as_str()) {
                        let names: Vec<&Value> = op["parameters"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|p| &p["name"])
                            .collect();
                        assert_eq!(
                            names,
                            ["webhook-id", "webhook-timestamp", "webhook-signature"]
                        );
                    }
                    if op.get("requestBody").is_some() && path.starts_with("/api/v1/") {
                        assert!(op["responses"]["413"].is_object(), "{method} {path}");
                    }
                }
            }
        }
    }

    /// The documented fulfillment actions are the ones the handler takes.
    #[test]
    fn fulfillment_request_variants_parse() {
        let doc = document(Role::Warehouse);
        let variants = doc["components"]["schemas"]["FulfillmentRequest"]["oneOf"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(variants.len(), 5);
        for v in variants {
            let status = v["properties"]["status"]["enum"][0]
                .as_str()
                .unwrap_or_else(|| panic!("{v}"));
            let parsed = crate::domain::Action::parse(status, Some("UPS"), Some("1Z"), Some("r"));
            assert!(parsed.is_ok(), "{status}");
        }
    }
}

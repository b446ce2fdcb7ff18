//! The OpenAPI 3.0.3 document of each role's HTTP API, served at
//! `GET /api/v1/openapi.json`.
//!
//! It is written by hand with `serde_json::json!`, from the handlers
//! (`orders.rs`, `sync.rs`, `ops.rs`), the response shapes (`views.rs`), the
//! error body (`error.rs`) and the input shapes (`domain::order`). Keep it in
//! step with them: a route, parameter, field or status code added or changed
//! there must be changed here too. The tests below check that the document
//! hangs together (every `$ref` resolves) and that the warehouse's document
//! names no money field; `scripts/schemathesis` (run by `scripts/test`)
//! checks that it matches the handlers: every answer's status, content type
//! and body must be the documented ones.
//!
//! The warehouse document is built without the store-only schemas at all,
//! so it cannot mention money even in a description.

use serde_json::{Map, Value, json};

use crate::domain::Role;
use crate::domain::role::Command;
use crate::domain::values::{COUNTRIES, CURRENCIES};

/// Largest free-text field (`domain::values::MAX_TEXT`).
const MAX_TEXT: u64 = 500;
/// Largest SKU, line name, carrier and tracking number (`MAX_SHORT_TEXT`).
const MAX_SHORT_TEXT: u64 = 100;
/// Most lines per order (`MAX_LINES`).
const MAX_LINES: u64 = 200;
/// Most items per sync batch (`sync::MAX_BATCH`).
const MAX_BATCH: u64 = 1000;
/// Largest amount of minor units (`MinorUnits::MAX`).
const MAX_MINOR_UNITS: i64 = 1_000_000_000_000;

/// The OpenAPI document of the API `role` serves.
pub fn document(role: Role) -> Value {
    let title = match role {
        Role::Store => "fulfillment store API",
        Role::Warehouse => "fulfillment warehouse API",
    };
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": title,
            "version": env!("CARGO_PKG_VERSION"),
            "description": description(role),
        },
        "security": [{"bearerAuth": []}],
        "tags": [
            {"name": "orders", "description": "Orders as this side shows them."},
            {"name": "sync", "description": "Delivery to and from the other service."},
            {"name": "ops", "description": "Liveness, readiness, metrics and this document."},
        ],
        "paths": paths(role),
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token made with `fulfillment token create`.",
                },
            },
            "schemas": schemas(role),
        },
    })
}

fn description(role: Role) -> &'static str {
    match role {
        Role::Store => {
            "The store takes orders (with prices), edits them until the warehouse starts \
             on them, and requests cancellation. Money is integer minor units. Errors are \
             application/problem+json; `errors` lists every invalid field of a 422."
        }
        Role::Warehouse => {
            "The warehouse picks, packs and ships the orders the store sends it. Orders are \
             never created or edited here. Errors are application/problem+json; `errors` \
             lists every invalid field of a 422."
        }
    }
}

// ---------------------------------------------------------------------------
// Small builders
// ---------------------------------------------------------------------------

/// `{"$ref": "#/components/schemas/NAME"}`.
fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// The order shape of `role`.
fn order_ref(role: Role) -> Value {
    match role {
        Role::Store => schema_ref("StoreOrder"),
        Role::Warehouse => schema_ref("WarehouseOrder"),
    }
}

/// An error response: problem+json with the `Problem` schema.
fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/problem+json": {"schema": schema_ref("Problem")}},
    })
}

/// A JSON response with `schema`.
fn json_response(description: &str, schema: Value) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": schema}},
    })
}

/// A required JSON request body with `schema`.
fn json_body(schema: Value) -> Value {
    json!({
        "required": true,
        "content": {"application/json": {"schema": schema}},
    })
}

/// A plain-text response.
fn text_response(description: &str, media_type: &str, example: &str) -> Value {
    json!({
        "description": description,
        "content": {media_type: {"schema": {"type": "string"}, "example": example}},
    })
}

/// The codes of a space-separated list, as a JSON array (for an `enum`).
fn codes(list: &str) -> Value {
    list.split(' ').map(|c| json!(c)).collect()
}

/// A nullable string with at most `max` characters.
fn nullable_text(max: u64) -> Value {
    json!({"type": "string", "nullable": true, "maxLength": max})
}

/// A nullable RFC 3339 time.
fn nullable_time() -> Value {
    json!({"type": "string", "format": "date-time", "nullable": true})
}

/// The `{id}` path parameter.
fn id_param() -> Value {
    json!({
        "name": "id",
        "in": "path",
        "required": true,
        "description": "The order id (a UUID). Anything else is answered 400.",
        "schema": {"type": "string", "format": "uuid"},
    })
}

// Error statuses every route of one kind can answer.
const E401: (&str, &str) = (
    "401",
    "Missing, malformed, unknown or revoked bearer token.",
);
const E500: (&str, &str) = (
    "500",
    "Something went wrong on the service's side; nothing was applied.",
);
const E503: (&str, &str) = (
    "503",
    "The database cannot be reached or does not answer in time; nothing was changed. \
     Retry after the seconds in Retry-After.",
);
/// For the routes that write.
const E507: (&str, &str) = (
    "507",
    "The database's disk is full; nothing was written. Retry once space was freed.",
);
const E408: (&str, &str) = (
    "408",
    "The request took longer than 30 s (reading a slow body included) and was abandoned.",
);
const E400_ID: (&str, &str) = ("400", "The path id is not a UUID.");
const E400_ID_BODY: (&str, &str) = (
    "400",
    "The path id is not a UUID, or the body is not valid JSON.",
);
const E400_BODY: (&str, &str) = ("400", "The body is not valid JSON.");
const E404: (&str, &str) = ("404", "No order with this id.");
const E413: (&str, &str) = ("413", "The body is larger than 1 MiB.");
const E415: (&str, &str) = (
    "415",
    "The body is not sent as JSON (Content-Type: application/json).",
);

/// The responses of an operation: `ok` (status → response) plus one
/// problem+json response per `(status, description)` of `errors`; the first
/// description of a status wins.
fn responses(ok: Value, errors: &[(&str, &str)]) -> Value {
    let mut map = match ok {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    for (status, description) in errors {
        map.entry(*status).or_insert_with(|| problem(description));
    }
    if let Some(Value::Object(unavailable)) = map.get_mut("503") {
        unavailable.insert(
            "headers".into(),
            json!({"Retry-After": {
                "description": "Seconds to wait before retrying.",
                "schema": {"type": "integer", "minimum": 0},
            }}),
        );
    }
    Value::Object(map)
}

/// Like [`responses`], for a bearer route: adds 401, 500 and 503 (the token
/// is looked up in the database before anything else) and 408 (every
/// request runs under the request timeout).
fn bearer_responses(ok: Value, errors: &[(&str, &str)]) -> Value {
    let mut all = errors.to_vec();
    all.extend([E401, E408, E500, E503]);
    responses(ok, &all)
}

/// The Standard Webhooks headers of a signed peer request.
fn signed_headers() -> Value {
    let header = |name: &str, description: &str, schema: Value| {
        json!({
            "name": name, "in": "header", "required": true,
            "description": description, "schema": schema,
        })
    };
    json!([
        header(
            "webhook-id",
            "Unique per request (1 to 200 characters); a request whose id was \
                              already seen is refused with 409 (replay protection).",
            json!({"type": "string", "minLength": 1, "maxLength": 200})
        ),
        header(
            "webhook-timestamp",
            "Unix seconds when the request was signed.",
            json!({"type": "string", "pattern": "^[0-9]+$"})
        ),
        header(
            "webhook-signature",
            "`v1,` + base64(HMAC-SHA256(secret, \"{id}.{timestamp}.{body}\")); \
                several space-separated signatures are allowed during secret rotation.",
            json!({"type": "string"})
        ),
    ])
}

/// A signed peer-to-peer operation (no bearer token): `ok` plus the errors
/// every signed route can answer and `extra`.
fn signed_operation(
    operation_id: &str,
    summary: &str,
    description: &str,
    request: Value,
    ok: Value,
    extra: &[(&str, &str)],
) -> Value {
    let mut errors = vec![
        ("400", "The body cannot be read, or is not valid JSON."),
        (
            "401",
            "Missing or invalid signature, or a timestamp more than 300 s off.",
        ),
        E408,
        E413,
        E500,
        E503,
    ];
    errors.extend_from_slice(extra);
    json!({
        "tags": ["sync"],
        "operationId": operation_id,
        "summary": summary,
        "description": description,
        "security": [],
        "parameters": signed_headers(),
        "requestBody": json_body(request),
        "responses": responses(ok, &errors),
    })
}

/// An operation that this role refuses: 405 after authentication (and after
/// the path id is checked when `with_id`).
fn not_here(operation_id: &str, summary: &str, why: &str, with_id: bool) -> Value {
    let mut errors = vec![("405", why)];
    if with_id {
        errors.push(E400_ID);
    }
    json!({
        "tags": ["orders"],
        "operationId": operation_id,
        "summary": summary,
        "description": format!("Always 405 on this side: {why}"),
        "responses": bearer_responses(json!({}), &errors),
    })
}

// ---------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------

fn paths(role: Role) -> Value {
    let mut p = Map::new();
    let mut orders = Map::new();
    orders.insert("get".into(), list_orders(role));
    orders.insert("post".into(), create_order(role));
    p.insert("/api/v1/orders".into(), Value::Object(orders));

    let mut one = Map::new();
    one.insert("parameters".into(), json!([id_param()]));
    one.insert("get".into(), get_order(role));
    one.insert("patch".into(), patch_order(role));
    one.insert("delete".into(), delete_order());
    p.insert("/api/v1/orders/{id}".into(), Value::Object(one));

    p.insert(
        "/api/v1/orders/{id}/cancel".into(),
        json!({"parameters": [id_param()], "post": cancel_order(role)}),
    );
    p.insert(
        "/api/v1/orders/{id}/fulfillment".into(),
        json!({"parameters": [id_param()], "post": change_fulfillment(role)}),
    );
    p.insert(
        "/api/v1/orders/{id}/audit".into(),
        json!({"parameters": [id_param()], "get": order_audit()}),
    );
    p.insert(
        "/api/v1/orders/{id}/sync".into(),
        json!({"parameters": [id_param()], "get": order_sync()}),
    );
    p.insert(
        "/api/v1/sync/changes".into(),
        json!({"post": sync_changes(role)}),
    );
    p.insert("/api/v1/sync/status".into(), json!({"get": sync_status()}));
    p.insert("/api/v1/sync/replay".into(), json!({"post": sync_replay()}));
    p.insert(
        "/api/v1/sync/reconcile".into(),
        json!({"post": sync_reconcile(role), "get": sync_reconcile_job()}),
    );
    p.insert(
        "/api/v1/sync/digests".into(),
        json!({"post": sync_digests()}),
    );
    p.insert(
        "/api/v1/sync/versions".into(),
        json!({"post": sync_versions()}),
    );
    p.insert("/api/v1/sync/resend".into(), json!({"post": sync_resend()}));
    p.insert(
        "/api/v1/openapi.json".into(),
        json!({"get": openapi_json()}),
    );
    p.insert("/healthz".into(), json!({"get": healthz()}));
    p.insert("/readyz".into(), json!({"get": readyz()}));
    p.insert("/metrics".into(), json!({"get": metrics(role)}));
    Value::Object(p)
}

fn list_orders(role: Role) -> Value {
    let statuses: &[&str] = match role {
        Role::Store => &[
            "open",
            "cancel_requested",
            "pending",
            "picking",
            "packed",
            "shipped",
            "on_hold",
            "cancelled",
        ],
        Role::Warehouse => &[
            "pending",
            "picking",
            "packed",
            "shipped",
            "on_hold",
            "cancelled",
        ],
    };
    let status_doc = match role {
        Role::Store => {
            "Only orders in this state: `open` or `cancel_requested` (the store's status), or \
             a fulfillment status the warehouse has reported."
        }
        Role::Warehouse => "Only orders with this fulfillment status.",
    };
    json!({
        "tags": ["orders"],
        "operationId": "listOrders",
        "summary": "List orders, newest first",
        "parameters": [
            {
                "name": "limit", "in": "query",
                "description": "Page size.",
                "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
            },
            {
                "name": "cursor", "in": "query",
                "description": "`next_cursor` of the previous page.",
                "schema": {"type": "string"},
            },
            {
                "name": "status", "in": "query",
                "description": status_doc,
                "schema": {"type": "string", "enum": statuses},
            },
            {
                "name": "updated_since", "in": "query",
                "description": "Only orders changed at or after this RFC 3339 time.",
                "schema": {"type": "string", "format": "date-time"},
            },
            {
                "name": "q", "in": "query",
                "description": "Search: exact order number or SKU, or part of the \
                                customer's name or e-mail.",
                "schema": {"type": "string", "maxLength": MAX_TEXT},
            },
            {
                "name": "sync", "in": "query",
                "description": "Only orders in this sync state towards the other service.",
                "schema": {"type": "string", "enum": ["pending", "synced", "failing", "dead"]},
            },
        ],
        "responses": bearer_responses(
            json!({"200": json_response("A page of orders.", schema_ref("OrderList"))}),
            &[
                ("400", "The query string cannot be read."),
                ("422", "A query parameter is invalid; `errors` names each one."),
            ],
        ),
    })
}

fn create_order(role: Role) -> Value {
    if role == Role::Warehouse {
        return not_here(
            "createOrder",
            "Create an order (store only)",
            "orders are created at the store, never at the warehouse.",
            false,
        );
    }
    json!({
        "tags": ["orders"],
        "operationId": "createOrder",
        "summary": "Create an order",
        "description": "With an `Idempotency-Key`, the same key and body within 24 h \
                        answers 201 with the first response and creates nothing; the same \
                        key with another body is 422.",
        "parameters": [{
            "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "Makes retries safe: 1 to 255 visible ASCII characters.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        }],
        "requestBody": json_body(schema_ref("CreateOrder")),
        "responses": bearer_responses(
            json!({"201": json_response("The order, created (or the first answer to this \
                                         Idempotency-Key).", schema_ref("StoreOrder"))}),
            &[
                E400_BODY,
                ("409", "The next order number is already taken (only after a hand edit \
                         of the database)."),
                E413,
                E415,
                ("422", "Invalid values (every one listed in `errors`), a bad \
                         Idempotency-Key, or the key reused with another body."),
                E507,
            ],
        ),
    })
}

fn get_order(role: Role) -> Value {
    json!({
        "tags": ["orders"],
        "operationId": "getOrder",
        "summary": "One order",
        "responses": bearer_responses(
            json!({"200": json_response("The order.", order_ref(role))}),
            &[E400_ID, E404],
        ),
    })
}

fn patch_order(role: Role) -> Value {
    if role == Role::Warehouse {
        return not_here(
            "patchOrder",
            "Edit an order (store only)",
            "order content is edited at the store; the warehouse changes fulfillment with \
             POST /api/v1/orders/{id}/fulfillment.",
            true,
        );
    }
    json!({
        "tags": ["orders"],
        "operationId": "patchOrder",
        "summary": "Edit an order",
        "description": "Each field present replaces the whole field. Refused (409) once the \
                        store knows fulfillment has left `pending`/`on_hold`, or after a \
                        cancel was requested.",
        "requestBody": json_body(schema_ref("PatchOrder")),
        "responses": bearer_responses(
            json!({"200": json_response("The order, edited.", schema_ref("StoreOrder"))}),
            &[
                E400_ID_BODY,
                E404,
                ("409", "The order can no longer be edited."),
                E413,
                E415,
                ("422", "Invalid values, or no field to change; `errors` lists each."),
                E507,
            ],
        ),
    })
}

fn delete_order() -> Value {
    json!({
        "tags": ["orders"],
        "operationId": "deleteOrder",
        "summary": "Never allowed",
        "description": "Orders are never deleted: always 405 for a valid id, whether or not \
                        the order exists.",
        "responses": bearer_responses(
            json!({}),
            &[E400_ID, ("405", "Orders are never deleted.")],
        ),
    })
}

fn cancel_order(role: Role) -> Value {
    if role == Role::Warehouse {
        return not_here(
            "cancelOrder",
            "Request cancellation (store only)",
            "cancellation is requested at the store; the warehouse answers it automatically.",
            true,
        );
    }
    json!({
        "tags": ["orders"],
        "operationId": "cancelOrder",
        "summary": "Request cancellation",
        "description": "Asks the warehouse to cancel; it cancels unless the order was \
                        already shipped, and both outcomes sync back. Repeating it is a \
                        no-op 200. The body is optional: an empty request (no \
                        Content-Type, or Content-Length 0) is a cancel without a reason.",
        "requestBody": {
            "required": false,
            "content": {"application/json": {"schema": schema_ref("CancelRequest")}},
        },
        "responses": bearer_responses(
            json!({"200": json_response("The order, with `status: cancel_requested`.",
                                        schema_ref("StoreOrder"))}),
            &[
                E400_ID_BODY,
                E404,
                E413,
                E415,
                ("422", "The reason is invalid, or the body has an unknown field."),
                E507,
            ],
        ),
    })
}

fn change_fulfillment(role: Role) -> Value {
    if role == Role::Store {
        return not_here(
            "changeFulfillment",
            "Change fulfillment (warehouse only)",
            "fulfillment is changed at the warehouse; the store sees it through sync.",
            true,
        );
    }
    json!({
        "tags": ["orders"],
        "operationId": "changeFulfillment",
        "summary": "Move an order through fulfillment",
        "description": "pending → picking → packed → shipped; `on_hold` (with a reason) \
                        from pending, picking or packed; `released` returns to the status \
                        the hold left. Any other move is 409 naming the current status.",
        "requestBody": json_body(schema_ref("FulfillmentRequest")),
        "responses": bearer_responses(
            json!({"200": json_response("The order, moved.", schema_ref("WarehouseOrder"))}),
            &[
                E400_ID_BODY,
                E404,
                ("409", "The transition is not allowed from the current status."),
                E413,
                E415,
                ("422", "Unknown status, a missing carrier, tracking_number or reason, or \
                         an unknown field."),
                E507,
            ],
        ),
    })
}

fn order_audit() -> Value {
    json!({
        "tags": ["orders"],
        "operationId": "getOrderAudit",
        "summary": "Every change to the order, oldest first",
        "responses": bearer_responses(
            json!({"200": json_response("The audit trail.", schema_ref("AuditList"))}),
            &[E400_ID, E404],
        ),
    })
}

fn order_sync() -> Value {
    json!({
        "tags": ["sync"],
        "operationId": "getOrderSync",
        "summary": "The order's delivery timeline, newest first",
        "description": "At most the last 100 delivery attempts.",
        "responses": bearer_responses(
            json!({"200": json_response("Sync state and attempts.", schema_ref("SyncTimeline"))}),
            &[E400_ID, E404],
        ),
    })
}

/// Every signed route refuses a request whose `webhook-id` it has seen.
const REPLAYED: &str = "This webhook-id was already processed (a replayed request).";

fn sync_changes(role: Role) -> Value {
    let what = match role {
        Role::Store => "fulfillment snapshots from the warehouse",
        Role::Warehouse => "content snapshots from the store",
    };
    signed_operation(
        "receiveSyncChanges",
        "Receive a signed batch from the other service",
        &format!(
            "Peer to peer: {what}. Signed with the Standard Webhooks scheme instead of a \
             bearer token: unsigned, badly signed, or a timestamp more than 300 s off is 401. \
             Each item is applied, stale, or rejected on its own."
        ),
        schema_ref("SyncBatch"),
        json!({"200": json_response("One result per item, in request order.",
                                    schema_ref("SyncBatchResult"))}),
        &[
            ("409", REPLAYED),
            (
                "422",
                "The body is not a batch, or has more than 1000 items.",
            ),
            E507,
        ],
    )
}

fn sync_digests() -> Value {
    signed_operation(
        "peerDigests",
        "Digests of id ranges (reconciliation, peer to peer)",
        "Signed like sync/changes. Answers one digest per range, in request order: the \
         number of orders whose id is in `[lo, hi)` and a checksum of each side's versions.",
        schema_ref("DigestsRequest"),
        json!({"200": json_response("One digest per range.", schema_ref("DigestsAnswer"))}),
        &[
            ("409", REPLAYED),
            (
                "422",
                "The body is not a digests request, or has more than 512 ranges.",
            ),
        ],
    )
}

fn sync_versions() -> Value {
    signed_operation(
        "peerVersions",
        "Versions of the orders in an id range (reconciliation, peer to peer)",
        "Signed like sync/changes. At most `limit` orders of `[lo, hi)`, by id.",
        schema_ref("VersionsRequest"),
        json!({"200": json_response("The orders' versions.", schema_ref("VersionsAnswer"))}),
        &[
            ("409", REPLAYED),
            (
                "422",
                "The body is not a versions request, or `limit` is not between 1 and 2000.",
            ),
        ],
    )
}

fn sync_resend() -> Value {
    signed_operation(
        "peerResend",
        "Send these orders again (reconciliation, peer to peer)",
        "Signed like sync/changes. Enqueues this side's snapshot of each known order again, \
         first raising its version above `above` when it is not higher.",
        schema_ref("ResendRequest"),
        json!({"200": json_response("How many were enqueued and how many are unknown here.",
                                    schema_ref("ResendAnswer"))}),
        &[
            ("409", REPLAYED),
            (
                "422",
                "The body is not a resend request, has more than 2000 items, or an `above` \
                 outside 0 to 999999999.",
            ),
            E507,
        ],
    )
}

fn sync_reconcile(role: Role) -> Value {
    if !role.may(Command::Reconcile) {
        return not_here(
            "startReconciliation",
            "Start a reconciliation pass (store only)",
            "reconciliation runs from the store; the warehouse only answers it.",
            false,
        );
    }
    json!({
        "tags": ["sync"],
        "operationId": "startReconciliation",
        "summary": "Start a reconciliation pass",
        "description": "Starts a pass that compares this side with the other service by \
                        digests and repairs what differs, in the background (a pass over a \
                        large database outlasts any request), and answers it as it starts. \
                        Follow it with GET on the same path; the last pass is also in \
                        `/api/v1/sync/status`. Takes no body.",
        "responses": bearer_responses(
            json!({"202": {
                "description": "The pass started.",
                "headers": {"Location": {"description": "Where to follow it.",
                                         "schema": {"type": "string"}}},
                "content": {"application/json": {"schema": schema_ref("ReconcileJob")}},
            }}),
            &[("409", "A reconciliation is already running.")],
        ),
    })
}

fn sync_reconcile_job() -> Value {
    json!({
        "tags": ["sync"],
        "operationId": "getReconciliation",
        "summary": "The reconciliation pass running now, or the last one",
        "responses": bearer_responses(
            json!({"200": json_response("The pass.", schema_ref("ReconcileJob"))}),
            &[E404_NONE_YET],
        ),
    })
}

fn sync_status() -> Value {
    json!({
        "tags": ["sync"],
        "operationId": "getSyncStatus",
        "summary": "Outbox towards the other service",
        "responses": bearer_responses(
            json!({"200": json_response("Outbox and breaker state.", schema_ref("SyncStatus"))}),
            &[],
        ),
    })
}

fn sync_replay() -> Value {
    json!({
        "tags": ["sync"],
        "operationId": "replaySync",
        "summary": "Dead letters back to pending",
        "description": "What `fulfillment outbox replay` does. With `dry_run`, only counts.",
        "requestBody": json_body(schema_ref("ReplayRequest")),
        "responses": bearer_responses(
            json!({"200": json_response("How many were (or would be) replayed.",
                                        schema_ref("ReplayResult"))}),
            &[
                E400_BODY,
                E413,
                E415,
                ("422", "Not exactly one of ids, all: true or since; or an invalid value or \
                         unknown field."),
                E507,
            ],
        ),
    })
}

fn openapi_json() -> Value {
    json!({
        "tags": ["ops"],
        "operationId": "getOpenApi",
        "summary": "This document",
        "responses": bearer_responses(
            json!({"200": json_response("The OpenAPI 3.0.3 document of this side's API.",
                                        json!({"type": "object"}))}),
            &[],
        ),
    })
}

fn healthz() -> Value {
    json!({
        "tags": ["ops"],
        "operationId": "healthz",
        "summary": "Liveness",
        "security": [],
        "responses": {"200": text_response("The process runs.", "text/plain", "ok")},
    })
}

fn readyz() -> Value {
    json!({
        "tags": ["ops"],
        "operationId": "readyz",
        "summary": "Readiness",
        "security": [],
        "responses": responses(
            json!({"200": text_response("The database takes writes: a probe through the \
                                         write path answered within 2 s.", "text/plain", "ready")}),
            &[E408, ("503", "Not ready: the database does not take writes (unreachable, \
                             the SQLite writer stopped, its disk full, or no answer within \
                             2 s); the detail says which.")],
        ),
    })
}

fn metrics(role: Role) -> Value {
    let example = format!(
        "# TYPE fulfillment_outbox_pending gauge\nfulfillment_outbox_pending{{role=\"{role}\"}} 0\n"
    );
    json!({
        "tags": ["ops"],
        "operationId": "metrics",
        "summary": "Prometheus metrics",
        "description": "Outbox gauges and sync counters, labelled with the role.",
        "security": [],
        "responses": responses(
            json!({"200": text_response(
                "Prometheus text exposition format.",
                "text/plain; version=0.0.4",
                &example,
            )}),
            &[E408],
        ),
    })
}

// ---------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------

fn schemas(role: Role) -> Value {
    let mut s = Map::new();
    let mut put = |name: &str, schema: Value| {
        s.insert(name.to_owned(), schema);
    };
    put("FieldError", field_error());
    put("Problem", problem_schema());
    put("Customer", customer());
    put("Address", address());
    put("Sync", sync());
    put("OrderList", order_list(role));
    put("AuditList", audit_list());
    put("SyncTimeline", sync_timeline());
    put("SyncStatus", sync_status_schema());
    put("ReplayRequest", replay_request());
    put("ReplayResult", replay_result());
    put("SyncBatch", sync_batch(role));
    put("SyncBatchResult", sync_batch_result());
    put("ReconcileReport", reconcile_report());
    put("ReconcileJob", reconcile_job());
    put("IdRange", id_range());
    put("DigestsRequest", digests_request());
    put("DigestsAnswer", digests_answer());
    put("VersionsRequest", versions_request());
    put("VersionsAnswer", versions_answer());
    put("ResendRequest", resend_request());
    put("ResendAnswer", resend_answer());
    match role {
        Role::Store => {
            put("StoreLine", store_line());
            put("Fulfillment", fulfillment());
            put("StoreOrder", store_order());
            put("CustomerInput", customer_input());
            put("AddressInput", address_input());
            put("PricedLineInput", priced_line_input());
            put("CreateOrder", create_order_schema());
            put("PatchOrder", patch_order_schema());
            put("CancelRequest", cancel_request());
        }
        Role::Warehouse => {
            put("WarehouseLine", warehouse_line());
            put("WarehouseOrder", warehouse_order());
            put("FulfillmentRequest", fulfillment_request());
        }
    }
    Value::Object(s)
}

fn field_error() -> Value {
    json!({
        "type": "object",
        "required": ["field", "message"],
        "properties": {
            "field": {"type": "string", "example": "lines[0].quantity"},
            "message": {"type": "string", "example": "must be between 1 and 10000"},
        },
    })
}

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "RFC 9457 problem details.",
        "required": ["type", "title", "status", "detail", "errors"],
        "properties": {
            "type": {
                "type": "string", "format": "uri",
                "example": "https://fulfillment.invalid/problems/validation",
            },
            "title": {"type": "string", "example": "Invalid request"},
            "status": {"type": "integer", "example": 422},
            "detail": {"type": "string"},
            "errors": {
                "type": "array",
                "description": "Every invalid field of a 422; empty otherwise.",
                "items": schema_ref("FieldError"),
            },
        },
    })
}

fn customer() -> Value {
    json!({
        "type": "object",
        "required": ["name", "email", "company"],
        "properties": {
            "name": {"type": "string"},
            "email": {"type": "string", "format": "email"},
            "company": {"type": "string", "nullable": true},
        },
    })
}

fn address() -> Value {
    json!({
        "type": "object",
        "required": ["name", "line1", "line2", "city", "region", "postal_code", "country"],
        "properties": {
            "name": {"type": "string"},
            "line1": {"type": "string"},
            "line2": {"type": "string", "nullable": true},
            "city": {"type": "string"},
            "region": {"type": "string", "nullable": true},
            "postal_code": {"type": "string"},
            "country": {"type": "string", "description": "ISO 3166-1 alpha-2, upper case.",
                        "example": "GB"},
        },
    })
}

fn sync() -> Value {
    json!({
        "type": "object",
        "description": "This side's delivery of the order to the other service.",
        "required": ["state", "store_version", "warehouse_version", "last_error"],
        "properties": {
            "state": {"type": "string", "enum": ["pending", "synced", "failing", "dead"]},
            "store_version": {"type": "integer", "format": "int64"},
            "warehouse_version": {"type": "integer", "format": "int64"},
            "last_error": {"type": "string", "nullable": true},
        },
    })
}

fn order_list(role: Role) -> Value {
    json!({
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": order_ref(role)},
            "next_cursor": {
                "type": "string", "nullable": true,
                "description": "Pass as `cursor` for the next page; null when this page \
                                was not full.",
            },
        },
    })
}

fn audit_list() -> Value {
    json!({
        "type": "object",
        "required": ["items"],
        "properties": {
            "items": {
                "type": "array",
                "description": "Oldest first.",
                "items": {
                    "type": "object",
                    "required": ["at", "actor", "changes"],
                    "properties": {
                        "at": {"type": "string", "format": "date-time"},
                        "actor": {
                            "type": "object",
                            "required": ["kind", "name"],
                            "properties": {
                                "kind": {"type": "string",
                                         "enum": ["admin", "token", "sync", "system"]},
                                "name": {"type": "string"},
                            },
                        },
                        "changes": {
                            "type": "array",
                            "description": "Names of the fields changed.",
                            "items": {"type": "string"},
                            "example": ["notes"],
                        },
                    },
                },
            },
        },
    })
}

fn sync_timeline() -> Value {
    json!({
        "type": "object",
        "required": ["state", "store_version", "warehouse_version", "last_error", "attempts"],
        "properties": {
            "state": {"type": "string", "enum": ["pending", "synced", "failing", "dead"]},
            "store_version": {"type": "integer", "format": "int64"},
            "warehouse_version": {"type": "integer", "format": "int64"},
            "last_error": {"type": "string", "nullable": true},
            "attempts": {
                "type": "array",
                "description": "Newest first, at most 100.",
                "items": {
                    "type": "object",
                    "required": ["at", "outcome", "detail", "next_retry_at"],
                    "properties": {
                        "at": {"type": "string", "format": "date-time"},
                        "outcome": {"type": "string",
                                    "enum": ["applied", "stale", "rejected", "error"]},
                        "detail": {"type": "string", "nullable": true},
                        "next_retry_at": nullable_time(),
                    },
                },
            },
        },
    })
}

fn sync_status_schema() -> Value {
    json!({
        "type": "object",
        "required": ["pending", "dead", "oldest_pending_seconds", "breaker", "last_delivered_at",
                     "last_error", "last_reconciliation"],
        "properties": {
            "last_reconciliation": {
                "type": "object",
                "nullable": true,
                "description": "The last reconciliation pass; null before the first.",
                "required": ["finished_at", "compared", "differences", "repaired", "error"],
                "properties": {
                    "finished_at": {"type": "string", "format": "date-time"},
                    "compared": {"type": "integer", "format": "int64",
                                 "description": "Orders in this database."},
                    "differences": {"type": "integer", "format": "int64"},
                    "repaired": {"type": "integer", "format": "int64"},
                    "error": {"type": "string", "nullable": true,
                              "description": "Why the pass failed; null when it finished."},
                },
            },
            "pending": {"type": "integer", "format": "int64"},
            "dead": {"type": "integer", "format": "int64"},
            "oldest_pending_seconds": {"type": "number", "nullable": true},
            "breaker": {"type": "string", "enum": ["closed", "open", "half_open"]},
            "last_delivered_at": nullable_time(),
            "last_error": {
                "type": "object",
                "nullable": true,
                "description": "The last failed delivery while anything waits to be sent.",
                "required": ["at", "detail"],
                "properties": {
                    "at": {"type": "string", "format": "date-time"},
                    "detail": {"type": "string"},
                },
            },
        },
    })
}

fn replay_request() -> Value {
    json!({
        "type": "object",
        "description": "Exactly one of `ids`, `all: true` or `since`.",
        "additionalProperties": false,
        "properties": {
            "ids": {"type": "array", "items": {"type": "string", "format": "uuid"}},
            "all": {"type": "boolean"},
            "since": {"type": "string", "format": "date-time"},
            "dry_run": {"type": "boolean", "default": false},
        },
        "example": {"all": true, "dry_run": true},
    })
}

fn replay_result() -> Value {
    json!({
        "type": "object",
        "required": ["replayed", "dry_run"],
        "properties": {
            "replayed": {"type": "integer", "format": "int64"},
            "dry_run": {"type": "boolean"},
        },
    })
}

fn sync_batch(role: Role) -> Value {
    let item = match role {
        Role::Store => "A fulfillment snapshot from the warehouse.",
        Role::Warehouse => "A content snapshot from the store.",
    };
    json!({
        "type": "object",
        "required": ["changes"],
        "additionalProperties": false,
        "properties": {
            "changes": {
                "type": "array",
                "maxItems": MAX_BATCH,
                "items": {"type": "object", "description": item},
            },
        },
    })
}

fn sync_batch_result() -> Value {
    json!({
        "type": "object",
        "required": ["results"],
        "properties": {
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "outcome", "reason"],
                    "properties": {
                        "id": {"type": "string", "format": "uuid", "nullable": true,
                               "description": "Null when the item had no readable id."},
                        "outcome": {"type": "string", "enum": ["applied", "stale", "rejected"]},
                        "reason": {"type": "string", "nullable": true},
                        "fulfillment": {"type": "object",
                            "description": "In the warehouse's answer to a content snapshot: its fulfillment snapshot of the order after the item (absent when that state travels through the outbox)."},
                    },
                },
            },
        },
    })
}

const E404_NONE_YET: (&str, &str) = ("404", "No reconciliation has run yet.");

fn reconcile_job() -> Value {
    json!({
        "type": "object",
        "required": ["state", "started_at", "finished_at", "progress", "report", "error"],
        "properties": {
            "state": {"type": "string", "enum": ["running", "finished", "failed"]},
            "started_at": {"type": "string", "format": "date-time"},
            "finished_at": nullable_time(),
            "progress": {
                "type": "object", "nullable": true,
                "description": "While running: how many orders are under the id ranges \
                                compared so far, of how many on the larger side.",
                "required": ["settled_orders", "orders"],
                "properties": {
                    "settled_orders": {"type": "integer", "format": "int64"},
                    "orders": {"type": "integer", "format": "int64"},
                },
            },
            "report": {
                "allOf": [schema_ref("ReconcileReport")],
                "nullable": true,
                "description": "What the pass found and did, once finished.",
            },
            "error": {"type": "string", "nullable": true,
                      "description": "Why the pass failed."},
        },
    })
}

fn reconcile_report() -> Value {
    let count = |d: &str| {
        json!({"type": "integer", "format": "int64", "minimum": 0,
                                  "description": d})
    };
    json!({
        "type": "object",
        "required": ["local_orders", "peer_orders", "ranges_compared", "ranges_listed",
                     "resent_to_peer", "raised_locally", "requested_from_peer", "orphans"],
        "properties": {
            "local_orders": count("Orders in this database."),
            "peer_orders": count("Orders in the other service's database."),
            "ranges_compared": count("Id ranges whose digests were compared."),
            "ranges_listed": count("Small ranges compared order by order."),
            "resent_to_peer": count("Orders the other side lacked or held an older \
                                     version of: sent again."),
            "raised_locally": count("Orders whose local version was behind the other \
                                     side's copy: raised and sent."),
            "requested_from_peer": count("Orders the other side was asked to send again."),
            "orphans": count("Orders only the warehouse has; they cannot be recreated."),
        },
    })
}

fn id_range() -> Value {
    json!({
        "type": "object",
        "description": "Order ids `lo <= id < hi` (text order).",
        "required": ["lo", "hi"],
        "additionalProperties": false,
        "properties": {"lo": {"type": "string"}, "hi": {"type": "string"}},
    })
}

fn digests_request() -> Value {
    json!({
        "type": "object",
        "required": ["ranges"],
        "additionalProperties": false,
        "properties": {
            "ranges": {"type": "array", "maxItems": 512, "items": schema_ref("IdRange")},
        },
    })
}

fn digests_answer() -> Value {
    let int = json!({"type": "integer", "format": "int64"});
    json!({
        "type": "object",
        "required": ["digests"],
        "properties": {
            "digests": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["count", "store", "warehouse"],
                    "properties": {"count": int, "store": int, "warehouse": int},
                },
            },
        },
    })
}

fn versions_request() -> Value {
    json!({
        "type": "object",
        "required": ["range", "limit"],
        "additionalProperties": false,
        "properties": {
            "range": schema_ref("IdRange"),
            "limit": {"type": "integer", "minimum": 1, "maximum": 2000},
        },
    })
}

fn versions_answer() -> Value {
    json!({
        "type": "object",
        "required": ["rows"],
        "properties": {
            "rows": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "store_version", "warehouse_version"],
                    "properties": {
                        "id": {"type": "string", "format": "uuid"},
                        "store_version": {"type": "integer", "format": "int64"},
                        "warehouse_version": {"type": "integer", "format": "int64"},
                    },
                },
            },
        },
    })
}

fn resend_request() -> Value {
    json!({
        "type": "object",
        "required": ["items"],
        "additionalProperties": false,
        "properties": {
            "items": {
                "type": "array",
                "maxItems": 2000,
                "items": {
                    "type": "object",
                    "required": ["id"],
                    "additionalProperties": false,
                    "properties": {
                        "id": {"type": "string", "format": "uuid"},
                        "above": {"type": "integer", "format": "int64", "nullable": true,
                                  "minimum": 0, "maximum": 999_999_999,
                                  "description": "Raise this side's version above this \
                                                  first, when it is not higher."},
                    },
                },
            },
        },
    })
}

fn resend_answer() -> Value {
    let count = json!({"type": "integer", "format": "int64", "minimum": 0});
    json!({
        "type": "object",
        "required": ["resent", "unknown"],
        "properties": {"resent": count, "unknown": count},
    })
}

// -- store only --------------------------------------------------------------

fn store_line() -> Value {
    json!({
        "type": "object",
        "required": ["sku", "name", "quantity", "unit_price", "line_total"],
        "properties": {
            "sku": {"type": "string"},
            "name": {"type": "string"},
            "quantity": {"type": "integer", "minimum": 1, "maximum": 10000},
            "unit_price": {"type": "integer", "format": "int64", "description": "Minor units."},
            "line_total": {"type": "integer", "format": "int64",
                           "description": "quantity × unit_price, minor units."},
        },
    })
}

const FULFILLMENT_STATUSES: [&str; 6] = [
    "pending",
    "picking",
    "packed",
    "shipped",
    "on_hold",
    "cancelled",
];

fn fulfillment() -> Value {
    let mut statuses: Vec<Value> = FULFILLMENT_STATUSES.iter().map(|s| json!(s)).collect();
    statuses.push(Value::Null);
    json!({
        "type": "object",
        "description": "The fulfillment the store has heard of from the warehouse.",
        "required": ["status", "hold_reason", "carrier", "tracking_number", "shipped_at",
                     "cancel_rejected_reason", "content_changed_after_pick"],
        "properties": {
            "status": {"type": "string", "nullable": true, "enum": statuses,
                       "description": "Null until the warehouse has reported the order."},
            "hold_reason": {"type": "string", "nullable": true},
            "carrier": {"type": "string", "nullable": true},
            "tracking_number": {"type": "string", "nullable": true},
            "shipped_at": nullable_time(),
            "cancel_rejected_reason": {"type": "string", "nullable": true},
            "content_changed_after_pick": {"type": "boolean"},
        },
    })
}

fn store_order() -> Value {
    json!({
        "type": "object",
        "required": ["id", "number", "status", "customer", "shipping_address", "lines",
                     "currency", "shipping_cost", "subtotal", "total", "notes", "deliver_by",
                     "cancel_reason", "fulfillment", "sync", "created_at", "updated_at"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "number": {"type": "string", "example": "SO-000001"},
            "status": {"type": "string", "enum": ["open", "cancel_requested"]},
            "customer": schema_ref("Customer"),
            "shipping_address": schema_ref("Address"),
            "lines": {"type": "array", "items": schema_ref("StoreLine")},
            "currency": {"type": "string", "description": "ISO 4217.", "example": "GBP"},
            "shipping_cost": {"type": "integer", "format": "int64", "description": "Minor units."},
            "subtotal": {"type": "integer", "format": "int64",
                         "description": "Sum of line_total, minor units."},
            "total": {"type": "integer", "format": "int64",
                      "description": "subtotal + shipping_cost, minor units."},
            "notes": {"type": "string", "nullable": true},
            "deliver_by": nullable_time(),
            "cancel_reason": {"type": "string", "nullable": true},
            "fulfillment": schema_ref("Fulfillment"),
            "sync": schema_ref("Sync"),
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    })
}

fn customer_input() -> Value {
    json!({
        "type": "object",
        "required": ["name", "email"],
        "additionalProperties": false,
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT},
            "email": {"type": "string", "format": "email", "maxLength": 254},
            "company": nullable_text(MAX_TEXT),
        },
        "example": {"name": "Ada Lovelace", "email": "ada@example.com", "company": null},
    })
}

fn address_input() -> Value {
    let text = json!({"type": "string", "minLength": 1, "maxLength": MAX_TEXT});
    json!({
        "type": "object",
        "required": ["name", "line1", "city", "postal_code", "country"],
        "additionalProperties": false,
        "properties": {
            "name": text,
            "line1": text,
            "line2": nullable_text(MAX_TEXT),
            "city": text,
            "region": nullable_text(MAX_TEXT),
            "postal_code": text,
            "country": {"type": "string", "enum": codes(COUNTRIES),
                        "description": "ISO 3166-1 alpha-2; lower case is accepted too \
                                        and stored upper case."},
        },
    })
}

fn priced_line_input() -> Value {
    let short = json!({"type": "string", "minLength": 1, "maxLength": MAX_SHORT_TEXT});
    json!({
        "type": "object",
        "required": ["sku", "name", "quantity", "unit_price"],
        "additionalProperties": false,
        "properties": {
            "sku": short,
            "name": short,
            "quantity": {"type": "integer", "minimum": 1, "maximum": 10000},
            "unit_price": {"type": "integer", "format": "int64", "minimum": 0,
                           "maximum": MAX_MINOR_UNITS, "description": "Minor units."},
        },
    })
}

fn lines_array() -> Value {
    json!({
        "type": "array", "minItems": 1, "maxItems": MAX_LINES,
        "items": schema_ref("PricedLineInput"),
    })
}

fn shipping_cost_input() -> Value {
    json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": MAX_MINOR_UNITS,
           "description": "Minor units."})
}

fn create_order_schema() -> Value {
    let mut shipping_cost = shipping_cost_input();
    shipping_cost["default"] = json!(0);
    json!({
        "type": "object",
        "required": ["customer", "shipping_address", "lines", "currency"],
        "additionalProperties": false,
        "properties": {
            "customer": schema_ref("CustomerInput"),
            "shipping_address": schema_ref("AddressInput"),
            "lines": lines_array(),
            "currency": {"type": "string", "enum": codes(CURRENCIES),
                         "description": "ISO 4217; lower case is accepted too and stored \
                                         upper case."},
            "shipping_cost": shipping_cost,
            "notes": nullable_text(MAX_TEXT),
            "deliver_by": nullable_time(),
        },
        "example": {
            "customer": {"name": "Ada Lovelace", "email": "ada@example.com", "company": null},
            "shipping_address": {"name": "Ada Lovelace", "line1": "12 St James's Sq",
                                 "line2": null, "city": "London", "region": null,
                                 "postal_code": "SW1Y 4JH", "country": "GB"},
            "lines": [{"sku": "WID-1", "name": "Widget", "quantity": 2, "unit_price": 1999}],
            "currency": "GBP",
            "shipping_cost": 500,
            "notes": "leave at the door",
            "deliver_by": "2026-12-01T17:00:00Z",
        },
    })
}

fn patch_order_schema() -> Value {
    json!({
        "type": "object",
        "description": "At least one field; each replaces the whole field. `notes: null` \
                        clears the notes.",
        "minProperties": 1,
        "additionalProperties": false,
        "properties": {
            "customer": schema_ref("CustomerInput"),
            "shipping_address": schema_ref("AddressInput"),
            "lines": lines_array(),
            "notes": nullable_text(MAX_TEXT),
            "shipping_cost": shipping_cost_input(),
        },
    })
}

fn cancel_request() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {"reason": nullable_text(MAX_TEXT)},
    })
}

// -- warehouse only ----------------------------------------------------------

fn warehouse_line() -> Value {
    json!({
        "type": "object",
        "required": ["sku", "name", "quantity"],
        "properties": {
            "sku": {"type": "string"},
            "name": {"type": "string"},
            "quantity": {"type": "integer", "minimum": 1, "maximum": 10000},
        },
    })
}

fn warehouse_order() -> Value {
    json!({
        "type": "object",
        "required": ["id", "number", "customer", "shipping_address", "notes", "deliver_by",
                     "lines", "status", "hold_reason", "carrier", "tracking_number",
                     "shipped_at", "cancel_requested", "cancel_reason",
                     "cancel_rejected_reason", "content_changed_after_pick", "sync",
                     "created_at", "updated_at"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "number": {"type": "string", "example": "SO-000001"},
            "customer": schema_ref("Customer"),
            "shipping_address": schema_ref("Address"),
            "notes": {"type": "string", "nullable": true},
            "deliver_by": nullable_time(),
            "lines": {"type": "array", "items": schema_ref("WarehouseLine")},
            "status": {"type": "string", "enum": FULFILLMENT_STATUSES},
            "hold_reason": {"type": "string", "nullable": true},
            "carrier": {"type": "string", "nullable": true},
            "tracking_number": {"type": "string", "nullable": true},
            "shipped_at": nullable_time(),
            "cancel_requested": {"type": "boolean"},
            "cancel_reason": {"type": "string", "nullable": true},
            "cancel_rejected_reason": {"type": "string", "nullable": true},
            "content_changed_after_pick": {"type": "boolean",
                "description": "The store changed the content after work had started."},
            "sync": schema_ref("Sync"),
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    })
}

fn fulfillment_request() -> Value {
    let status = |s: &str| json!({"type": "string", "enum": [s]});
    let short = json!({"type": "string", "minLength": 1, "maxLength": MAX_SHORT_TEXT});
    let variant = |name: &str, required: Value, properties: Value| {
        let mut v = json!({"type": "object", "title": name, "required": required,
                           "properties": properties});
        v["properties"]["status"] = status(name);
        v
    };
    json!({
        "description": "One action. Unknown fields are refused; fields that do not belong \
                        to the chosen status are ignored.",
        "oneOf": [
            variant("picking", json!(["status"]), json!({})),
            variant("packed", json!(["status"]), json!({})),
            variant("shipped", json!(["status", "carrier", "tracking_number"]),
                    json!({"carrier": short, "tracking_number": short})),
            variant("on_hold", json!(["status", "reason"]),
                    json!({"reason": {"type": "string", "minLength": 1,
                                      "maxLength": MAX_TEXT}})),
            variant("released", json!(["status"]), json!({})),
        ],
        "example": {"status": "shipped", "carrier": "UPS", "tracking_number": "1Z999"},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both() -> [(Role, Value); 2] {
        [
            (Role::Store, document(Role::Store)),
            (Role::Warehouse, document(Role::Warehouse)),
        ]
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
    fn is_openapi_3_0_3_json() {
        for (role, doc) in both() {
            let text = serde_json::to_string(&doc).unwrap_or_else(|e| panic!("{e}"));
            let back: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(back["openapi"], "3.0.3", "{role}");
            assert_eq!(back["info"]["version"], env!("CARGO_PKG_VERSION"));
            assert!(back["paths"].as_object().is_some_and(|p| !p.is_empty()));
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

    #[test]
    fn warehouse_document_has_no_money() {
        let text = document(Role::Warehouse).to_string().to_lowercase();
        for word in ["price", "total", "currency", "shipping_cost", "subtotal"] {
            assert!(
                !text.contains(word),
                "the warehouse document mentions {word}"
            );
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
        let wh = document(Role::Warehouse);
        let wh_post = &wh["paths"]["/api/v1/orders"]["post"]["responses"];
        assert!(wh_post["405"].is_object());
        assert!(wh_post.get("201").is_none());
    }

    #[test]
    fn bearer_routes_answer_401_and_unsigned_routes_opt_out() {
        for (role, doc) in both() {
            for (path, item) in doc["paths"].as_object().into_iter().flatten() {
                for (method, op) in item.as_object().into_iter().flatten() {
                    if method == "parameters" {
                        continue;
                    }
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
                    if !open {
                        assert!(
                            op["responses"]["401"].is_object(),
                            "{role} {method} {path}: no 401"
                        );
                    }
                }
            }
        }
    }
}

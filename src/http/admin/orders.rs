//! Order pages: the list, one order (with its fulfillment, sync state,
//! delivery timeline and audit trail), the store's create/edit/cancel forms
//! and the warehouse's fulfillment buttons.
//!
//! Role differences are data: the store's views carry money, the
//! warehouse's never do (its [`OrderView`] has no pricing to read); which
//! fulfillment buttons exist is asked of the state machine itself.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::Deserialize;

use super::form::{FIELDS, LineValues, OrderValues, merge_errors};
use super::format::{self, Badge};
use super::session::{AdminUser, Fields};
use super::{AdminError, AdminResult, Chrome, render};
use crate::domain::delivery::SyncState;
use crate::domain::role::Command;
use crate::domain::{Action, Fulfillment, FulfillmentStatus, OrderId, Role};
use crate::engine::{Created, EngineError, OrderView};
use crate::http::AppState;
use crate::http::orders::ListParams;

/// Orders per page of the list.
const PAGE_SIZE: u32 = 25;
/// Delivery attempts shown on an order page.
const TIMELINE_LIMIT: i64 = 50;

fn order_id(raw: &str) -> AdminResult<OrderId> {
    OrderId::parse(raw).ok_or(AdminError::NotFound)
}

/// The pages of a command the other side runs do not exist here (404),
/// like any other unknown page: the warehouse has no order form.
fn only_if(state: &AppState, command: Command) -> AdminResult<()> {
    state
        .engine
        .role()
        .check(command)
        .map_err(|_| AdminError::NotFound)
}

// -- the list ---------------------------------------------------------------------------

/// The list's query, echoed back into its filter form.
#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    sync: String,
    #[serde(default)]
    cursor: String,
}

pub struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

pub struct ListRow {
    pub id: String,
    pub number: String,
    pub customer: String,
    pub email: String,
    pub status: Badge,
    pub cancel_requested: bool,
    pub sync: Badge,
    pub updated: String,
    /// Store only.
    pub total: Option<String>,
}

#[derive(Template)]
#[template(path = "orders.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<ListRow>,
    q: String,
    statuses: Vec<Choice>,
    syncs: Vec<Choice>,
    status: String,
    sync: String,
    next_cursor: Option<String>,
    paged: bool,
    filtered: bool,
    error: Option<String>,
}

fn status_choices(role: Role, current: &str) -> Vec<Choice> {
    let mut out = Vec::new();
    if role.may(Command::RequestCancel) {
        out.push(("open", "Open (no cancel request)"));
        out.push(("cancel_requested", "Cancel requested"));
    }
    for s in FulfillmentStatus::ALL {
        out.push((s.as_str(), format::status_label(s)));
    }
    out.into_iter()
        .map(|(value, label)| Choice {
            value,
            label,
            selected: value == current,
        })
        .collect()
}

fn sync_choices(current: &str) -> Vec<Choice> {
    SyncState::ALL
        .iter()
        .map(|s| Choice {
            value: s.as_str(),
            label: format::sync_label(*s),
            selected: s.as_str() == current,
        })
        .collect()
}

pub fn list_row(v: &OrderView) -> ListRow {
    let o = &v.order;
    ListRow {
        id: o.id.to_string(),
        number: o.number.clone(),
        customer: o.content.customer.name.to_string(),
        email: o.content.customer.email.as_str().to_owned(),
        status: Badge::status(o.fulfillment.as_ref().map(|f| f.status)),
        // Once cancelled, the request needs no badge of its own.
        cancel_requested: o.content.cancel.is_some()
            && o.fulfillment.as_ref().map(|f| f.status) != Some(FulfillmentStatus::Cancelled),
        sync: Badge::sync(v.sync.state),
        updated: format::time(o.updated_at),
        total: v
            .pricing
            .as_ref()
            .map(|p| format::money(p.total(&o.content.lines).get(), p.currency.as_str())),
    }
}

/// `GET /admin/orders`: search, filters, newest first, cursor pages.
pub async fn list(
    State(state): State<AppState>,
    user: AdminUser,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
    echo: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> AdminResult {
    let role = state.engine.role();
    let echo = echo.map(|Query(q)| q).unwrap_or_default();
    // The API's own parser: the same filters, the same validation.
    let filter = params.map_err(|e| e.body_text()).and_then(|Query(p)| {
        p.filter(role).map_err(|e| match e {
            crate::http::error::ApiError::Invalid { errors, .. } => errors
                .iter()
                .map(|e| format!("{} {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; "),
            _ => "the filters could not be read".into(),
        })
    });
    let (rows, next_cursor, error) = match filter {
        Ok(mut f) => {
            f.limit = PAGE_SIZE + 1;
            let mut views = state.engine.list(&f).await?;
            let more = views.len() > PAGE_SIZE as usize;
            views.truncate(PAGE_SIZE as usize);
            let next = if more {
                views.last().map(|v| v.order.id.to_string())
            } else {
                None
            };
            (views.iter().map(list_row).collect(), next, None)
        }
        Err(e) => (Vec::new(), None, Some(format!("Check the filters: {e}."))),
    };
    let page = ListPage {
        chrome: Chrome::new(role, &user, "Orders", "orders"),
        rows,
        statuses: status_choices(role, &echo.status),
        syncs: sync_choices(&echo.sync),
        filtered: !(echo.q.is_empty() && echo.status.is_empty() && echo.sync.is_empty()),
        paged: !echo.cursor.is_empty(),
        q: echo.q,
        status: echo.status,
        sync: echo.sync,
        next_cursor,
        error,
    };
    let status = if page.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    render(status, &page)
}

// -- one order --------------------------------------------------------------------------

pub struct LineView {
    pub sku: String,
    pub name: String,
    pub quantity: u32,
    pub unit_price: Option<String>,
    pub line_total: Option<String>,
}

/// The money of an order: only ever built at the store.
pub struct Totals {
    pub subtotal: String,
    pub shipping: String,
    pub total: String,
}

pub struct AttemptView {
    pub at: String,
    pub outcome: String,
    pub detail: Option<String>,
    pub next_retry: Option<String>,
}

pub struct AuditView {
    pub at: String,
    pub actor_kind: String,
    pub actor_name: String,
    pub changes: String,
}

/// Which fulfillment buttons the warehouse shows: exactly the transitions
/// the state machine accepts from the current status.
#[derive(Default)]
pub struct Actions {
    pub pick: bool,
    pub pack: bool,
    pub ship: bool,
    pub hold: bool,
    pub release: bool,
}

impl Actions {
    pub fn allowed(f: &Fulfillment) -> Actions {
        let now = Utc::now();
        let ok = |a: Action| f.apply(a, now).is_ok();
        let x = || "x".to_owned();
        Actions {
            pick: ok(Action::Pick),
            pack: ok(Action::Pack),
            ship: ok(Action::Ship {
                carrier: x(),
                tracking_number: x(),
            }),
            hold: ok(Action::Hold { reason: x() }),
            release: ok(Action::Release),
        }
    }

    pub fn any(&self) -> bool {
        self.pick || self.pack || self.ship || self.hold || self.release
    }
}

/// Everything the order page shows.
pub struct Detail {
    pub id: String,
    pub number: String,
    pub customer_name: String,
    pub customer_email: String,
    pub customer_company: Option<String>,
    pub address: Vec<String>,
    pub notes: Option<String>,
    pub deliver_by: Option<String>,
    pub cancel_requested: bool,
    pub cancel_reason: Option<String>,
    pub lines: Vec<LineView>,
    pub totals: Option<Totals>,
    pub currency: Option<String>,
    pub status: Badge,
    pub fulfillment_known: bool,
    pub hold_reason: Option<String>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub shipped_at: Option<String>,
    pub cancel_outcome: Option<String>,
    pub content_changed_after_pick: bool,
    pub store_version: i64,
    pub warehouse_version: i64,
    pub sync: Badge,
    pub sync_dead: bool,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl Detail {
    fn new(v: &OrderView) -> Detail {
        let o = &v.order;
        let c = &o.content;
        let a = &c.shipping_address;
        let f = o.fulfillment.as_ref();
        let shipment = f.and_then(|f| f.shipment.as_ref());
        let currency = v.pricing.as_ref().map(|p| p.currency.as_str().to_owned());
        let money = |m: i64| format::money(m, currency.as_deref().unwrap_or(""));
        let mut address = vec![a.name.to_string(), a.line1.to_string()];
        address.extend(a.line2.clone());
        address.push(format!("{} {}", a.postal_code, a.city));
        address.extend(a.region.clone());
        address.push(a.country.as_str().to_owned());
        let cancel_outcome = match (c.cancel.is_some(), f) {
            (_, Some(f)) if f.cancel_rejected_reason.is_some() => Some(format!(
                "Cancellation refused: {}",
                f.cancel_rejected_reason.as_deref().unwrap_or("")
            )),
            (true, Some(f)) if f.status == FulfillmentStatus::Cancelled => {
                Some("Cancelled by the warehouse".to_owned())
            }
            (true, _) => Some("Requested; waiting for the warehouse's answer".to_owned()),
            (false, Some(f)) if f.status == FulfillmentStatus::Cancelled => {
                Some("Cancelled".to_owned())
            }
            _ => None,
        };
        Detail {
            id: o.id.to_string(),
            number: o.number.clone(),
            customer_name: c.customer.name.to_string(),
            customer_email: c.customer.email.as_str().to_owned(),
            customer_company: c.customer.company.clone(),
            address,
            notes: c.notes.clone(),
            deliver_by: c.deliver_by.map(format::time),
            cancel_requested: c.cancel.is_some(),
            cancel_reason: c.cancel.as_ref().and_then(|r| r.reason.clone()),
            lines: c
                .lines
                .iter()
                .enumerate()
                .map(|(i, l)| LineView {
                    sku: l.sku.as_str().to_owned(),
                    name: l.name.as_str().to_owned(),
                    quantity: l.quantity.get(),
                    unit_price: v
                        .pricing
                        .as_ref()
                        .map(|p| money(p.unit_prices.get(i).map_or(0, |u| u.get()))),
                    line_total: v.pricing.as_ref().map(|p| money(p.line_total(i, l).get())),
                })
                .collect(),
            totals: v.pricing.as_ref().map(|p| Totals {
                subtotal: money(p.subtotal(&c.lines).get()),
                shipping: money(p.shipping_cost.get()),
                total: money(p.total(&c.lines).get()),
            }),
            currency: currency.clone(),
            status: Badge::status(f.map(|f| f.status)),
            fulfillment_known: f.is_some(),
            hold_reason: f.and_then(|f| f.hold.as_ref()).map(|h| h.reason.clone()),
            carrier: shipment.map(|s| s.carrier.clone()),
            tracking_number: shipment.map(|s| s.tracking_number.clone()),
            shipped_at: shipment.map(|s| format::time(s.shipped_at)),
            cancel_outcome,
            content_changed_after_pick: f.is_some_and(|f| f.content_changed_after_pick),
            store_version: o.store_version,
            warehouse_version: o.warehouse_version,
            sync: Badge::sync(v.sync.state),
            sync_dead: v.sync.state == SyncState::Dead,
            last_error: v.sync.last_error.clone(),
            created_at: format::time(o.created_at),
            updated_at: format::time(o.updated_at),
        }
    }
}

#[derive(Template)]
#[template(path = "order.html")]
struct OrderPage {
    chrome: Chrome,
    o: Detail,
    peer: &'static str,
    notice: Option<&'static str>,
    error: Option<String>,
    /// Warehouse: the buttons to show.
    actions: Actions,
    /// Errors and typed values of the action forms (carrier, reason...).
    action_errors: HashMap<String, String>,
    action_values: HashMap<String, String>,
    /// Store: editing allowed, or why not.
    can_edit: bool,
    edit_refused: Option<String>,
    can_cancel: bool,
    attempts: Vec<AttemptView>,
    audit: Vec<AuditView>,
}

impl OrderPage {
    fn value(&self, name: &str) -> &str {
        self.action_values.get(name).map_or("", |s| s.as_str())
    }
}

/// What a POST that failed wants shown on the order page.
#[derive(Default)]
struct Problems {
    error: Option<String>,
    action_errors: HashMap<String, String>,
    action_values: HashMap<String, String>,
}

fn notice_text(key: &str) -> Option<&'static str> {
    Some(match key {
        "created" => "Order created. It is on its way to the warehouse.",
        "saved" => "Changes saved.",
        "cancel_requested" => "Cancellation requested; the warehouse will answer it.",
        "picking" => "Picking started.",
        "packed" => "Marked as packed.",
        "shipped" => "Marked as shipped.",
        "on_hold" => "Put on hold.",
        "released" => "Hold released.",
        "replayed" => "Delivery restarted.",
        _ => return None,
    })
}

async fn order_page(
    state: &AppState,
    user: &AdminUser,
    id: OrderId,
    status: StatusCode,
    notice: Option<&'static str>,
    problems: Problems,
) -> AdminResult {
    let engine = &state.engine;
    let role = engine.role();
    let v = engine.get(id).await?;
    let attempts = engine.attempts(id, TIMELINE_LIMIT).await?;
    let audit = engine.audit(id).await?;
    let edit_refused = v.order.store_may_edit().err().map(|e| e.to_string());
    let terminal = v
        .order
        .fulfillment
        .as_ref()
        .is_some_and(|f| f.status.is_terminal());
    let page = OrderPage {
        chrome: Chrome::new(role, user, format!("Order {}", v.order.number), "orders"),
        peer: role.peer().as_str(),
        notice,
        error: problems.error,
        actions: if role.may(Command::ChangeFulfillment) {
            Actions::allowed(&v.order.fulfillment.clone().unwrap_or_default())
        } else {
            Actions::default()
        },
        action_errors: problems.action_errors,
        action_values: problems.action_values,
        can_edit: role.may(Command::EditOrder) && edit_refused.is_none(),
        edit_refused: edit_refused.filter(|_| role.may(Command::EditOrder)),
        can_cancel: role.may(Command::RequestCancel)
            && v.order.content.cancel.is_none()
            && !terminal,
        attempts: attempts
            .into_iter()
            .map(|a| AttemptView {
                at: format::micros(a.at),
                outcome: a.outcome,
                detail: a.detail,
                next_retry: a.next_retry_at.map(format::micros),
            })
            .collect(),
        audit: audit
            .into_iter()
            .map(|e| AuditView {
                at: format::micros(e.at),
                changes: e.change_list().join(", ").replace('_', " "),
                actor_kind: e.actor_kind,
                actor_name: e.actor_name,
            })
            .collect(),
        o: Detail::new(&v),
    };
    render(status, &page)
}

#[derive(Deserialize, Default)]
pub struct NoticeQuery {
    #[serde(default)]
    notice: String,
}

/// `GET /admin/orders/{id}`.
pub async fn show(
    State(state): State<AppState>,
    user: AdminUser,
    Path(id): Path<String>,
    q: Result<Query<NoticeQuery>, axum::extract::rejection::QueryRejection>,
) -> AdminResult {
    let id = order_id(&id)?;
    let notice = q.ok().and_then(|Query(q)| notice_text(&q.notice));
    order_page(
        &state,
        &user,
        id,
        StatusCode::OK,
        notice,
        Problems::default(),
    )
    .await
}

fn see_order(id: OrderId, notice: &str) -> Response {
    Redirect::to(&format!("/admin/orders/{id}?notice={notice}")).into_response()
}

// -- the store's order form -------------------------------------------------------------

pub struct InputView {
    pub name: &'static str,
    pub id: String,
    pub label: &'static str,
    pub kind: &'static str,
    pub value: String,
    pub required: bool,
    pub hint: &'static str,
    pub error: Option<String>,
    pub readonly: bool,
    pub wide: bool,
}

pub struct Section {
    pub title: &'static str,
    pub inputs: Vec<InputView>,
}

pub struct LineRowView {
    pub index: usize,
    pub v: LineValues,
    pub err_sku: Option<String>,
    pub err_name: Option<String>,
    pub err_quantity: Option<String>,
    pub err_unit_price: Option<String>,
}

pub struct ErrorLink {
    pub id: String,
    pub text: String,
}

#[derive(Template)]
#[template(path = "order_form.html")]
struct FormPage {
    chrome: Chrome,
    heading: String,
    action: String,
    submit: &'static str,
    back: String,
    sections: Vec<Section>,
    lines: Vec<LineRowView>,
    lines_error: Option<String>,
    currency: String,
    error: Option<String>,
    summary: Vec<ErrorLink>,
}

/// `lines[1].sku` → `lines-1-sku`: a valid, readable element id.
fn input_id(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .replace("--", "-")
        .trim_end_matches('-')
        .to_owned()
}

/// How the form is being used.
enum FormMode<'a> {
    New,
    Edit { id: OrderId, number: &'a str },
}

fn form_page(
    state: &AppState,
    user: &AdminUser,
    mode: FormMode<'_>,
    values: &OrderValues,
    errors: &HashMap<String, String>,
    error: Option<String>,
) -> FormPage {
    let editing = matches!(mode, FormMode::Edit { .. });
    let titles = [
        ("customer", "Customer"),
        ("address", "Shipping address"),
        ("order", "Order"),
    ];
    let mut summary = Vec::new();
    let sections = titles
        .iter()
        .map(|(key, title)| Section {
            title,
            inputs: FIELDS
                .iter()
                .filter(|f| f.section == *key)
                .map(|f| InputView {
                    name: f.name,
                    id: input_id(f.name),
                    label: f.label,
                    kind: f.kind,
                    value: values.get(f.name).to_owned(),
                    required: f.required && !(editing && f.create_only),
                    hint: if editing && f.create_only {
                        "set when the order was created"
                    } else {
                        f.hint
                    },
                    error: errors.get(f.name).cloned(),
                    readonly: editing && f.create_only,
                    wide: matches!(f.kind, "textarea"),
                })
                .collect(),
        })
        .collect::<Vec<Section>>();
    for s in &sections {
        for i in &s.inputs {
            if let Some(e) = &i.error {
                summary.push(ErrorLink {
                    id: i.id.clone(),
                    text: format!("{} {e}", i.label),
                });
            }
        }
    }
    let mut lines: Vec<LineRowView> = values
        .lines
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let err = |f: &str| errors.get(&format!("lines[{i}].{f}")).cloned();
            LineRowView {
                index: i,
                v: v.clone(),
                err_sku: err("sku"),
                err_name: err("name"),
                err_quantity: err("quantity"),
                err_unit_price: err("unit_price"),
            }
        })
        .collect();
    if lines.is_empty() {
        lines.push(LineRowView {
            index: 0,
            v: LineValues::default(),
            err_sku: None,
            err_name: None,
            err_quantity: None,
            err_unit_price: None,
        });
    }
    for l in &lines {
        for (f, e) in [
            ("sku", &l.err_sku),
            ("name", &l.err_name),
            ("quantity", &l.err_quantity),
            ("unit_price", &l.err_unit_price),
        ] {
            if let Some(e) = e {
                summary.push(ErrorLink {
                    id: format!("lines-{}-{}", l.index, f.replace('_', "-")),
                    text: format!("Line {} {} {e}", l.index + 1, f.replace('_', " ")),
                });
            }
        }
    }
    let lines_error = errors.get("lines").cloned();
    if let Some(e) = &lines_error {
        summary.push(ErrorLink {
            id: "lines".into(),
            text: format!("Lines: {e}"),
        });
    }
    if let Some(e) = errors.get("body") {
        summary.push(ErrorLink {
            id: "lines".into(),
            text: e.clone(),
        });
    }
    let (heading, action, submit, back) = match mode {
        FormMode::New => (
            "New order".to_owned(),
            "/admin/orders".to_owned(),
            "Create order",
            "/admin/orders".to_owned(),
        ),
        FormMode::Edit { id, number } => (
            format!("Edit order {number}"),
            format!("/admin/orders/{id}/edit"),
            "Save changes",
            format!("/admin/orders/{id}"),
        ),
    };
    FormPage {
        chrome: Chrome::new(state.engine.role(), user, heading.clone(), "new"),
        heading,
        action,
        submit,
        back,
        sections,
        lines,
        lines_error,
        // Only an existing order's currency is fixed; a new one's is typed.
        currency: if editing {
            values.get("currency").to_owned()
        } else {
            String::new()
        },
        error,
        summary,
    }
}

/// `GET /admin/orders/new` (store only).
pub async fn new_form(State(state): State<AppState>, user: AdminUser) -> AdminResult {
    only_if(&state, Command::CreateOrder)?;
    let page = form_page(
        &state,
        &user,
        FormMode::New,
        &OrderValues::blank(),
        &HashMap::new(),
        None,
    );
    render(StatusCode::OK, &page)
}

/// The "add line" / "remove line" buttons without JavaScript: the form
/// comes back with one row more or less, nothing is saved.
fn row_change(fields: &Fields, values: &mut OrderValues) -> bool {
    if fields.get("add_line").is_some() {
        values.lines.push(LineValues::default());
        return true;
    }
    if let Some(i) = fields.get("remove_line") {
        if let Ok(i) = i.parse::<usize>()
            && i < values.lines.len()
        {
            values.lines.remove(i);
        }
        if values.lines.is_empty() {
            values.lines.push(LineValues::default());
        }
        return true;
    }
    false
}

const FIX_BELOW: &str = "The order was not saved: correct the fields marked below.";

/// `POST /admin/orders` (store only): creates the order or shows the form
/// again with every error next to its field and everything as typed.
pub async fn create(State(state): State<AppState>, user: AdminUser, fields: Fields) -> AdminResult {
    user.check_csrf(&fields)?;
    only_if(&state, Command::CreateOrder)?;
    let mut values = OrderValues::from_fields(&fields);
    if row_change(&fields, &mut values) {
        let page = form_page(&state, &user, FormMode::New, &values, &HashMap::new(), None);
        return render(StatusCode::OK, &page);
    }
    let values = values.without_blank_lines();
    let (input, form_errors) = values.create_input();
    let parsed = input.parse();
    let (content, pricing) = match parsed {
        Ok(ok) if form_errors.is_empty() => ok,
        Ok(_) => return invalid_form(&state, &user, FormMode::New, &values, form_errors, vec![]),
        Err(errs) => {
            return invalid_form(&state, &user, FormMode::New, &values, form_errors, errs);
        }
    };
    let created = state
        .engine
        .create_order(&user.actor(), content, pricing, None, |_| String::new())
        .await?;
    match created {
        Created::New(v) => {
            tracing::info!(order_id = %v.order.id, number = %v.order.number, user = %user.username, "order created in admin");
            Ok(see_order(v.order.id, "created"))
        }
        Created::Replayed(_) => Err(AdminError::Internal),
    }
}

fn invalid_form(
    state: &AppState,
    user: &AdminUser,
    mode: FormMode<'_>,
    values: &OrderValues,
    form_errors: Vec<crate::domain::FieldError>,
    domain_errors: Vec<crate::domain::FieldError>,
) -> AdminResult {
    let errors = merge_errors(form_errors, domain_errors);
    let page = form_page(state, user, mode, values, &errors, Some(FIX_BELOW.into()));
    render(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

/// `GET /admin/orders/{id}/edit` (store only, while editing is allowed).
pub async fn edit_form(
    State(state): State<AppState>,
    user: AdminUser,
    Path(id): Path<String>,
) -> AdminResult {
    only_if(&state, Command::EditOrder)?;
    let id = order_id(&id)?;
    let v = state.engine.get(id).await?;
    if let Err(e) = v.order.store_may_edit() {
        let problems = Problems {
            error: Some(format!("Order {} cannot be edited: {e}.", v.order.number)),
            ..Default::default()
        };
        return order_page(&state, &user, id, StatusCode::CONFLICT, None, problems).await;
    }
    let mode = FormMode::Edit {
        id,
        number: &v.order.number,
    };
    let page = form_page(
        &state,
        &user,
        mode,
        &OrderValues::from_order(&v),
        &HashMap::new(),
        None,
    );
    render(StatusCode::OK, &page)
}

/// `POST /admin/orders/{id}/edit` (store only).
pub async fn edit(
    State(state): State<AppState>,
    user: AdminUser,
    Path(id): Path<String>,
    fields: Fields,
) -> AdminResult {
    user.check_csrf(&fields)?;
    only_if(&state, Command::EditOrder)?;
    let id = order_id(&id)?;
    let current = state.engine.get(id).await?;
    let number = current.order.number.clone();
    // The fields fixed at creation are shown, not submitted.
    let fixed = OrderValues::from_order(&current);
    let mut values = OrderValues::from_fields(&fields);
    for f in FIELDS.iter().filter(|f| f.create_only) {
        values.fields.insert(f.name, fixed.get(f.name).to_owned());
    }
    let mode = || FormMode::Edit {
        id,
        number: &number,
    };
    if row_change(&fields, &mut values) {
        let page = form_page(&state, &user, mode(), &values, &HashMap::new(), None);
        return render(StatusCode::OK, &page);
    }
    let values = values.without_blank_lines();
    let (patch, form_errors) = values.patch_input(fixed.get("currency"));
    if !form_errors.is_empty() {
        return invalid_form(&state, &user, mode(), &values, form_errors, vec![]);
    }
    match state.engine.patch_order(&user.actor(), id, &patch).await {
        Ok(_) => Ok(see_order(id, "saved")),
        Err(EngineError::Invalid(errs)) => {
            invalid_form(&state, &user, mode(), &values, form_errors, errs)
        }
        Err(EngineError::Conflict(m)) => {
            // The warehouse started meanwhile: keep what was typed, say why.
            let page = form_page(
                &state,
                &user,
                mode(),
                &values,
                &HashMap::new(),
                Some(format!("Not saved: {m}.")),
            );
            render(StatusCode::CONFLICT, &page)
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/orders/{id}/cancel` (store only), with an optional reason.
pub async fn cancel(
    State(state): State<AppState>,
    user: AdminUser,
    Path(id): Path<String>,
    fields: Fields,
) -> AdminResult {
    user.check_csrf(&fields)?;
    only_if(&state, Command::RequestCancel)?;
    let id = order_id(&id)?;
    let reason = fields.text("reason");
    match crate::domain::values::optional_text(
        "reason",
        Some(reason),
        crate::domain::values::MAX_TEXT,
    ) {
        Ok(reason) => {
            state
                .engine
                .request_cancel(&user.actor(), id, reason)
                .await?;
            Ok(see_order(id, "cancel_requested"))
        }
        Err(e) => {
            let problems = Problems {
                action_errors: HashMap::from([(e.field, e.message)]),
                action_values: HashMap::from([("reason".to_owned(), reason.to_owned())]),
                ..Default::default()
            };
            order_page(
                &state,
                &user,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                problems,
            )
            .await
        }
    }
}

/// `POST /admin/orders/{id}/fulfillment` (warehouse only): one button of
/// the state machine.
pub async fn fulfillment(
    State(state): State<AppState>,
    user: AdminUser,
    Path(id): Path<String>,
    fields: Fields,
) -> AdminResult {
    user.check_csrf(&fields)?;
    only_if(&state, Command::ChangeFulfillment)?;
    let id = order_id(&id)?;
    let status = match fields.text("action") {
        "pick" => "picking",
        "pack" => "packed",
        "ship" => "shipped",
        "hold" => "on_hold",
        "release" => "released",
        _ => return Err(AdminError::BadRequest("Unknown action.".into())),
    };
    let typed = |n: &str| Some(fields.text(n)).filter(|s| !s.is_empty());
    let values: HashMap<String, String> = ["carrier", "tracking_number", "reason"]
        .iter()
        .map(|n| (n.to_string(), fields.text(n).to_owned()))
        .collect();
    let action = match Action::parse(
        status,
        typed("carrier"),
        typed("tracking_number"),
        typed("reason"),
    ) {
        Ok(a) => a,
        Err(errs) => {
            let problems = Problems {
                action_errors: errs.into_iter().map(|e| (e.field, e.message)).collect(),
                action_values: values,
                error: None,
            };
            return order_page(
                &state,
                &user,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                problems,
            )
            .await;
        }
    };
    match state.engine.transition(&user.actor(), id, action).await {
        Ok(_) => Ok(see_order(id, status)),
        Err(EngineError::Conflict(m)) => {
            let problems = Problems {
                error: Some(format!("Not changed: {m}.")),
                action_values: values,
                ..Default::default()
            };
            order_page(&state, &user, id, StatusCode::CONFLICT, None, problems).await
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_follow_the_state_machine() {
        let mut f = Fulfillment::new();
        let a = Actions::allowed(&f);
        assert!(a.pick && a.hold && !a.pack && !a.ship && !a.release);
        f.status = FulfillmentStatus::Packed;
        let a = Actions::allowed(&f);
        assert!(a.ship && a.hold && !a.pick && !a.pack && !a.release);
        f.status = FulfillmentStatus::Shipped;
        assert!(!Actions::allowed(&f).any());
    }

    #[test]
    fn ids_from_field_names() {
        assert_eq!(input_id("lines[1].sku"), "lines-1-sku");
        assert_eq!(input_id("lines[0].unit_price"), "lines-0-unit-price");
        assert_eq!(input_id("customer.email"), "customer-email");
    }
}

//! `/admin/warehouses` (store only): the warehouses orders are routed to,
//! each with how delivery to it is going (outbox, dead letters, circuit
//! breaker, last delivery), a form to add one and a form to change each
//! (URL, countries, SKU prefixes, priority, active, a new secret).
//!
//! Secrets are write-only here as everywhere: the secret field is always
//! rendered empty, even when the form comes back with errors, and nothing
//! about a secret (not even whether one was typed) is shown. The rules are
//! the engine's ([`crate::domain::warehouse::WarehouseInput`]); this only
//! reads the forms and places the errors beside their fields.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::flash::{self, Flash, Notice};
use super::format;
use super::session::{AdminUser, Fields};
use super::{AdminError, AdminResult, Chrome, render};
use crate::domain::FieldError;
use crate::domain::delivery::SyncState;
use crate::domain::role::Command;
use crate::domain::warehouse::{Warehouse, WarehouseInput};
use crate::engine::EngineError;
use crate::http::AppState;
use crate::storage::now_micros;
use crate::sync::breaker::BreakerState;

/// The values of an add or change form, as typed, and its errors by field
/// (`name`, `url`, `countries`, `sku_prefixes`, `priority`, `active`,
/// `secret`). There is no secret value: it is never rendered back.
#[derive(Default)]
pub struct WarehouseForm {
    pub name: String,
    pub url: String,
    pub countries: String,
    pub sku_prefixes: String,
    pub priority: String,
    pub active: bool,
    pub errors: HashMap<String, String>,
}

impl WarehouseForm {
    fn of(w: &Warehouse) -> WarehouseForm {
        WarehouseForm {
            name: w.name.to_string(),
            url: w.url.clone(),
            countries: w
                .countries
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            sku_prefixes: w.sku_prefixes.join(", "),
            priority: w.priority.to_string(),
            active: w.active,
            errors: HashMap::new(),
        }
    }

    fn blank() -> WarehouseForm {
        WarehouseForm {
            priority: "0".into(),
            active: true,
            ..Default::default()
        }
    }

    pub fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field).map(String::as_str)
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }
}

/// One warehouse as listed: its settings, its delivery, its change form.
pub struct WarehouseRow {
    pub name: String,
    pub url: String,
    pub countries: String,
    pub sku_prefixes: String,
    pub priority: i64,
    pub active: bool,
    /// A word for how delivery is going, and its badge class.
    pub health: &'static str,
    pub health_class: &'static str,
    pub pending: i64,
    pub dead: i64,
    pub oldest_pending: Option<String>,
    pub breaker: &'static str,
    pub last_delivered: Option<String>,
    pub last_error: Option<String>,
    pub form: WarehouseForm,
}

#[derive(Template)]
#[template(path = "warehouses.html")]
struct WarehousesPage {
    chrome: Chrome,
    rows: Vec<WarehouseRow>,
    add: WarehouseForm,
    error: Option<String>,
}

/// A form that came back with errors: which one, and what it holds.
enum Refused {
    Add(WarehouseForm),
    Change(String, WarehouseForm),
}

const PATH: &str = "/admin/warehouses";

impl Refused {
    /// Kept for the page (never the secret: it is not in the form).
    fn into_flash(self, error: String) -> Flash {
        let (which, form) = match self {
            Refused::Add(f) => ("add".to_owned(), f),
            Refused::Change(name, f) => (name, f),
        };
        let mut flash = Flash::new(StatusCode::UNPROCESSABLE_ENTITY);
        flash.form = which;
        flash.error = Some(error);
        flash.values = vec![
            ("name".into(), form.name),
            ("url".into(), form.url),
            ("countries".into(), form.countries),
            ("sku_prefixes".into(), form.sku_prefixes),
            ("priority".into(), form.priority),
        ];
        if form.active {
            flash.values.push(("active".into(), "on".into()));
        }
        flash.errors = form.errors;
        flash
    }

    fn from_flash(f: &Flash) -> Refused {
        let form = WarehouseForm {
            name: f.value("name").to_owned(),
            url: f.value("url").to_owned(),
            countries: f.value("countries").to_owned(),
            sku_prefixes: f.value("sku_prefixes").to_owned(),
            priority: f.value("priority").to_owned(),
            active: f.value("active") == "on",
            errors: f.errors.clone(),
        };
        if f.form == "add" {
            Refused::Add(form)
        } else {
            Refused::Change(f.form.clone(), form)
        }
    }
}

/// `GET /admin/warehouses`, with the form a failed POST kept.
pub async fn page(State(state): State<AppState>, user: AdminUser) -> AdminResult {
    only_here(&state)?;
    match flash::take(&state, &user, PATH).await? {
        Some(f) => {
            let refused = Refused::from_flash(&f);
            show(&state, &user, f.status(), f.error, Some(refused)).await
        }
        None => show(&state, &user, StatusCode::OK, None, None).await,
    }
}

/// `POST /admin/warehouses`: adds a warehouse.
pub async fn add(State(state): State<AppState>, user: AdminUser, fields: Fields) -> AdminResult {
    user.check_csrf(&fields)?;
    only_here(&state)?;
    let (mut form, input, mut errors) = read(&fields, true);
    form.name = fields.text("name").to_owned();
    if errors.is_empty() {
        match state.engine.add_warehouse(&input).await {
            Ok(w) => {
                tracing::info!(user = %user.username, warehouse = %w.name, "warehouse added from admin");
                return Ok(flash::see(&user, PATH, Notice::WarehouseAdded(w.name)));
            }
            Err(EngineError::Invalid(errs)) => place(errs, &mut errors),
            Err(EngineError::Conflict(_)) => {
                errors.insert(
                    "name".into(),
                    "is taken by another warehouse; change that one below".into(),
                );
            }
            Err(e) => return Err(e.into()),
        }
    } else if let Err(errs) = input.create() {
        // Every other bad field too, not only the one found first.
        place(errs, &mut errors);
    }
    form.errors = errors;
    let error = "The warehouse was not added: see the fields marked below.".to_owned();
    Refused::Add(form)
        .into_flash(error)
        .keep(&state, &user, PATH)
        .await
}

/// `POST /admin/warehouses/{name}`: changes a warehouse (every field of
/// its form; the secret only when one is typed).
pub async fn change(
    State(state): State<AppState>,
    user: AdminUser,
    Path(name): Path<String>,
    fields: Fields,
) -> AdminResult {
    user.check_csrf(&fields)?;
    only_here(&state)?;
    let current = state.engine.warehouse(&name).await?;
    let (mut form, input, mut errors) = read(&fields, false);
    form.name = current.name.to_string();
    if errors.is_empty() {
        match state.engine.update_warehouse(&name, &input).await {
            Ok(w) => {
                tracing::info!(user = %user.username, warehouse = %w.name, "warehouse changed from admin");
                return Ok(flash::see(&user, PATH, Notice::WarehouseSaved(w.name)));
            }
            Err(EngineError::Invalid(errs)) => place(errs, &mut errors),
            Err(e) => return Err(e.into()),
        }
    } else if let Err(errs) = input.apply(&current) {
        place(errs, &mut errors);
    }
    form.errors = errors;
    let error = format!(
        "Warehouse {} was not changed: see the fields marked below.",
        current.name
    );
    Refused::Change(current.name.to_string(), form)
        .into_flash(error)
        .keep(&state, &user, PATH)
        .await
}

/// The warehouse has no warehouses: these pages are not there (404).
fn only_here(state: &AppState) -> AdminResult<()> {
    state
        .engine
        .role()
        .check(Command::ManageWarehouses)
        .map_err(|_| AdminError::NotFound)
}

/// Reads an add (`adding`) or change form: what to show again, what to
/// send, and the errors found before the engine looks (a priority that is
/// not a number).
fn read(fields: &Fields, adding: bool) -> (WarehouseForm, WarehouseInput, HashMap<String, String>) {
    let mut errors = HashMap::new();
    let form = WarehouseForm {
        name: String::new(),
        url: fields.text("url").to_owned(),
        countries: fields.text("countries").to_owned(),
        sku_prefixes: fields.text("sku_prefixes").to_owned(),
        priority: fields.text("priority").to_owned(),
        active: fields.get("active").is_some(),
        errors: HashMap::new(),
    };
    let priority = match form.priority.as_str() {
        "" => Some(0),
        p => match p.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.insert(
                    "priority".into(),
                    "must be a whole number, e.g. 0 or 10".into(),
                );
                None
            }
        },
    };
    let secret = fields.get("secret").filter(|s| !s.is_empty());
    let input = WarehouseInput {
        name: adding.then(|| fields.text("name").to_owned()),
        url: Some(form.url.clone()),
        countries: Some(list(&form.countries, |c| c == ',' || c.is_whitespace())),
        sku_prefixes: Some(list(&form.sku_prefixes, |c| c == ',' || c == '\n')),
        priority,
        active: Some(form.active),
        secret: secret.map(str::to_owned),
    };
    (form, input, errors)
}

/// The items of a list typed as text, separated by `sep`, blanks dropped.
fn list(text: &str, sep: impl Fn(char) -> bool) -> Vec<String> {
    text.split(sep)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The engine's field errors by the form's field: `countries[1]` is the
/// countries field's, naming the item.
fn place(errs: Vec<FieldError>, into: &mut HashMap<String, String>) {
    for e in errs {
        let (field, message) = match e.field.split_once('[') {
            Some((field, rest)) => {
                let n = rest
                    .trim_end_matches(']')
                    .parse::<usize>()
                    .map_or(0, |i| i + 1);
                (field.to_owned(), format!("item {n}: {}", e.message))
            }
            None => (e.field.clone(), e.message),
        };
        into.entry(field).or_insert(message);
    }
}

/// Renders the page: every warehouse with its delivery, read once, and
/// the form that came back with errors in place of its fresh one.
async fn show(
    state: &AppState,
    user: &AdminUser,
    status: StatusCode,
    error: Option<String>,
    refused: Option<Refused>,
) -> AdminResult {
    let engine = &state.engine;
    let list = engine.warehouses().await?;
    let mut outbox = engine.outbox_status_by_peer().await?;
    let now = now_micros();
    let (mut add, mut changed) = (WarehouseForm::blank(), None);
    match refused {
        Some(Refused::Add(f)) => add = f,
        Some(Refused::Change(name, f)) => changed = Some((name, f)),
        None => {}
    }
    let rows = list
        .into_iter()
        .map(|w| {
            let o = outbox.remove(w.name.as_str()).unwrap_or_default();
            let breaker = state.peers.get(w.name.as_str());
            let breaker_state = breaker.as_ref().map_or(BreakerState::Closed, |b| b.state());
            let last_error = breaker
                .and_then(|b| b.last_error())
                .filter(|_| o.pending > 0)
                .map(|(_, e)| e);
            // The worst state of its orders, in the words every page uses.
            let health = format::Badge::sync(if o.dead > 0 {
                SyncState::Dead
            } else if breaker_state != BreakerState::Closed || last_error.is_some() {
                SyncState::Failing
            } else if o.pending > 0 {
                SyncState::Pending
            } else {
                SyncState::Synced
            });
            let form = match changed.take() {
                Some((name, f)) if name == w.name.as_str() => f,
                other => {
                    changed = other;
                    WarehouseForm::of(&w)
                }
            };
            WarehouseRow {
                name: w.name.to_string(),
                url: w.url.clone(),
                countries: w
                    .countries
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                sku_prefixes: w.sku_prefixes.join(", "),
                priority: w.priority,
                active: w.active,
                health: health.text,
                health_class: health.class,
                pending: o.pending,
                dead: o.dead,
                oldest_pending: o
                    .oldest_pending_at
                    .map(|t| format::age((now - t) / 1_000_000)),
                breaker: match breaker_state {
                    BreakerState::Closed => "closed",
                    BreakerState::Open => "open",
                    BreakerState::HalfOpen => "half open",
                },
                last_delivered: o.last_delivered_at.map(format::micros),
                last_error,
                form,
            }
        })
        .collect();
    let page = WarehousesPage {
        chrome: Chrome::new(engine.role(), user, "Warehouses", "warehouses"),
        rows,
        add,
        error,
    };
    render(status, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_split_on_commas_and_blanks() {
        assert_eq!(
            list(" gb, DE  fr,,", |c| c == ',' || c.is_whitespace()),
            ["gb", "DE", "fr"]
        );
        assert_eq!(
            list("WID-, BOX 2 ,", |c| c == ',' || c == '\n'),
            ["WID-", "BOX 2"]
        );
    }

    #[test]
    fn item_errors_land_on_their_list() {
        let mut errors = HashMap::new();
        place(
            vec![
                FieldError::new("countries[1]", "must be a code"),
                FieldError::new("countries[2]", "must be a code"),
                FieldError::new("url", "must be a URL"),
            ],
            &mut errors,
        );
        assert_eq!(errors["countries"], "item 2: must be a code");
        assert_eq!(errors["url"], "must be a URL");
    }
}

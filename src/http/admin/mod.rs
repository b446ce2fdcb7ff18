//! The admin web UI under `/admin/`: server-rendered HTML (askama templates
//! from `templates/`, compiled into the binary) that works without
//! JavaScript. One set of pages for both roles; what differs (money, who
//! creates, which buttons) is data and small branches, never a copied page.
//!
//! - [`session`]: sign-in, sessions in the database, the [`session::AdminUser`]
//!   extractor (no session: 303 to the login page) and the CSRF check;
//! - [`orders`]: the order list, the order page, the store's create/edit/cancel
//!   forms, both sides' holds and the warehouse's fulfillment buttons ([`form`]
//!   parses the order form);
//! - [`sync`]: outbox health, what waits and fails, history ([`charts`]) and
//!   dead-letter replay; [`tokens`]: users and API tokens;
//! - [`warehouses`]: the store's warehouses, their delivery, add and change;
//! - [`flash`]: post/redirect/get: the one-time notice after a form that
//!   worked, and the form kept for one read after one that did not.
//!
//! Every response here carries strict security headers (no inline script or
//! style is allowed by the CSP); pages are `no-store`. Errors are HTML pages.
//! Business rules stay in the engine: handlers only parse forms, call it and
//! render.

pub mod charts;
pub mod flash;
pub mod form;
pub mod format;
pub mod orders;
pub mod session;
pub mod sync;
pub mod tokens;
pub mod warehouses;

use askama::Template;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, any, get, post};

use super::AppState;
use crate::domain::Role;
use crate::domain::role::Command;
use crate::engine::EngineError;
use crate::storage::StorageError;
use session::AdminUser;

/// The admin routes, with their full `/admin/...` paths (merged into the
/// service's router, so that both `/admin` and `/admin/` are ours).
pub fn router(state: AppState) -> Router<AppState> {
    // Each route answers a wrong method itself: a merged router has no
    // fallback of its own, and the API's fallback would answer problem+json.
    fn only(m: MethodRouter<AppState>) -> MethodRouter<AppState> {
        m.fallback(|| async {
            AdminError::page(
                StatusCode::METHOD_NOT_ALLOWED,
                "Not allowed",
                "This page does not take that kind of request.",
            )
        })
    }
    Router::new()
        .route("/admin", only(get(home)))
        .route("/admin/", only(get(home)))
        .route(
            "/admin/login",
            only(get(session::login_page).post(session::login)),
        )
        .route("/admin/logout", only(post(session::logout)))
        .route(
            "/admin/orders",
            only(get(orders::list).post(orders::create)),
        )
        .route("/admin/orders/new", only(get(orders::new_form)))
        .route("/admin/orders/{id}", only(get(orders::show)))
        .route(
            "/admin/orders/{id}/edit",
            only(get(orders::edit_form).post(orders::edit)),
        )
        .route("/admin/orders/{id}/cancel", only(post(orders::cancel)))
        .route(
            "/admin/orders/{id}/fulfillment",
            only(post(orders::fulfillment)),
        )
        .route("/admin/orders/{id}/route", only(post(orders::route)))
        .route(
            "/admin/orders/{id}/shipments",
            only(post(orders::ship_parcel)),
        )
        .route("/admin/orders/{id}/reject", only(post(orders::reject)))
        .route("/admin/orders/{id}/holds", only(post(orders::place_hold)))
        .route(
            "/admin/orders/{id}/holds/{hold_id}/release",
            only(post(orders::release_hold)),
        )
        .route(
            "/admin/warehouses",
            only(get(warehouses::page).post(warehouses::add)),
        )
        .route("/admin/warehouses/{name}", only(post(warehouses::change)))
        .route("/admin/sync", only(get(sync::page)))
        .route("/admin/sync/replay", only(post(sync::replay)))
        .route("/admin/sync/reconcile", only(post(sync::reconcile)))
        .route(
            "/admin/tokens",
            only(get(tokens::page).post(tokens::create)),
        )
        .route("/admin/tokens/{id}/revoke", only(post(tokens::revoke)))
        .route("/admin/static/admin.css", only(get(css)))
        .route("/admin/static/admin.js", only(get(js)))
        .route("/admin/{*rest}", any(not_found))
        .layer(middleware::from_fn_with_state(state, finish))
}

/// `/admin/`: the order list, or the login page without a session.
async fn home(_user: AdminUser) -> Redirect {
    Redirect::to("/admin/orders")
}

/// Unknown admin paths: the login page without a session (nothing is
/// revealed), an HTML 404 with one.
async fn not_found(_user: AdminUser) -> AdminError {
    AdminError::NotFound
}

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Runs after every admin handler: renders error pages with the role's
/// chrome, and adds the security headers (and `no-store` unless the handler
/// chose a cache policy, as the static assets do).
async fn finish(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let role = state.engine.role();
    let carried = flash::carried_notice(role, req.headers());
    let mut res = next.run(req).await;
    if let Some(err) = res.extensions_mut().remove::<ErrorPage>() {
        let status = res.status();
        let page = ErrorTemplate {
            chrome: Chrome::bare(role, err.title),
            message: err.message,
        };
        res = match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, "error").into_response(),
        };
    }
    flash::clear_notice(role, carried, &mut res);
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// Assets are compiled into the binary: no CDN, no external fonts.
const CSS: &str = include_str!("static/admin.css");
const JS: &str = include_str!("static/admin.js");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Short: a new binary may bring new assets under the same name.
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

// -- page chrome and rendering --------------------------------------------------

/// What the layout (`templates/base.html`) needs on every page.
pub struct Chrome {
    pub role: Role,
    pub title: String,
    /// The signed-in user; `None` on the login and error pages.
    pub user: Option<String>,
    /// The session's CSRF token (for the logout form).
    pub csrf: String,
    /// Which navigation entry is current.
    pub nav: &'static str,
    /// The one-time notice of the action that led here (see [`flash`]).
    pub notice: Option<String>,
}

impl Chrome {
    pub fn new(role: Role, user: &AdminUser, title: impl Into<String>, nav: &'static str) -> Self {
        Self {
            role,
            title: title.into(),
            user: Some(user.username.clone()),
            csrf: user.csrf.clone(),
            nav,
            notice: user.notice.as_ref().map(flash::Notice::text),
        }
    }

    /// Chrome without a user: login and error pages.
    pub fn bare(role: Role, title: impl Into<String>) -> Self {
        Self {
            role,
            title: title.into(),
            user: None,
            csrf: String::new(),
            nav: "",
            notice: None,
        }
    }

    pub fn role_label(&self) -> &'static str {
        self.role.title()
    }

    pub fn role_class(&self) -> &'static str {
        self.role.as_str()
    }

    /// Whether this side creates orders (the "New order" links).
    pub fn may_create_orders(&self) -> bool {
        self.role.may(Command::CreateOrder)
    }

    /// Whether this side edits orders and asks for their cancellation.
    pub fn may_edit_orders(&self) -> bool {
        self.role.may(Command::EditOrder)
    }

    /// Whether this side keeps warehouses (the "Warehouses" page).
    pub fn may_manage_warehouses(&self) -> bool {
        self.role.may(Command::ManageWarehouses)
    }

    /// Whether pages show money (prices, totals).
    pub fn shows_money(&self) -> bool {
        self.role.holds_money()
    }
}

/// Renders a template as a page with `status`.
pub fn render<T: Template>(status: StatusCode, page: &T) -> Result<Response, AdminError> {
    let html = page.render().map_err(|e| {
        tracing::error!(error = %e, "admin template failed");
        AdminError::Internal
    })?;
    Ok((status, Html(html)).into_response())
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorTemplate {
    chrome: Chrome,
    message: String,
}

/// Marks a response to be turned into an error page by [`finish`].
#[derive(Clone)]
struct ErrorPage {
    title: String,
    message: String,
}

// -- errors ------------------------------------------------------------------------

/// What can go wrong on an admin page; each becomes an HTML error page.
#[derive(Debug)]
pub enum AdminError {
    NotFound,
    /// 400: a request the forms never send.
    BadRequest(String),
    /// 403: missing or wrong CSRF token.
    Forbidden,
    /// 409: not allowed in the order's current state.
    Conflict(String),
    Internal,
    Unavailable,
}

impl AdminError {
    fn page(status: StatusCode, title: &str, message: &str) -> Response {
        let mut res = status.into_response();
        res.extensions_mut().insert(ErrorPage {
            title: title.to_owned(),
            message: message.to_owned(),
        });
        res
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        match self {
            AdminError::NotFound => Self::page(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such page or order here.",
            ),
            AdminError::BadRequest(m) => Self::page(StatusCode::BAD_REQUEST, "Bad request", &m),
            AdminError::Forbidden => Self::page(
                StatusCode::FORBIDDEN,
                "Form refused",
                "This form did not carry a valid security token, so nothing was changed. \
                 Go back, reload the page and try again.",
            ),
            AdminError::Conflict(m) => Self::page(StatusCode::CONFLICT, "Not possible now", &m),
            AdminError::Internal => Self::page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Something went wrong on our side; nothing was changed. Try again.",
            ),
            AdminError::Unavailable => Self::page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Database unavailable",
                "The database cannot be reached right now; nothing was changed. Try again in a moment.",
            ),
        }
    }
}

impl From<StorageError> for AdminError {
    fn from(e: StorageError) -> Self {
        match &e {
            e if e.kind() == crate::storage::ErrorKind::Unavailable => {
                tracing::warn!(error = %e, "database pool exhausted");
                AdminError::Unavailable
            }
            e if e.kind() == crate::storage::ErrorKind::Unstorable => {
                tracing::warn!(error = %e, "answered 400: the form holds text the database cannot store");
                AdminError::BadRequest(crate::http::error::UNSTORABLE.into())
            }
            _ => {
                tracing::error!(error = %e, "storage error");
                AdminError::Internal
            }
        }
    }
}

impl From<sqlx::Error> for AdminError {
    fn from(e: sqlx::Error) -> Self {
        StorageError::from(e).into()
    }
}

impl From<EngineError> for AdminError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::NotFound(_)
            | EngineError::UnknownWarehouse(_)
            | EngineError::UnknownHold(_) => AdminError::NotFound,
            EngineError::Conflict(m) => AdminError::Conflict(m),
            EngineError::Invalid(errors) => AdminError::BadRequest(
                errors
                    .iter()
                    .map(|e| format!("{} {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            EngineError::WrongRole(_) => AdminError::NotFound,
            EngineError::IdempotencyKeyReused => AdminError::BadRequest(e.to_string()),
            EngineError::Storage(s) => s.into(),
        }
    }
}

pub type AdminResult<T = Response> = Result<T, AdminError>;

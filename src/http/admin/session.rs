//! Sign-in, sessions and CSRF for the admin UI.
//!
//! - Sessions live in the database (several replicas share them); only the
//!   SHA-256 of the random session id is stored. Every sign-in makes a new
//!   id; sessions end after [`SESSION_TTL`] or at sign-out (the engine's
//!   [`crate::engine::sessions`] keeps them).
//! - The cookie is `HttpOnly`, `SameSite=Lax`, `Path=/admin`, and `Secure`
//!   when the request came over https (`X-Forwarded-Proto: https`). Its
//!   name carries the role, because browsers share cookies between ports of
//!   one host and the demo runs both services on 127.0.0.1.
//! - Every form carries a CSRF token: the session's own token, or before
//!   sign-in a token also set as a cookie (double submit), compared in
//!   constant time. A POST without the right token is refused with 403
//!   before anything is read or changed.
//! - [`MAX_SIGN_IN_FAILURES`] failed sign-ins for a username from one
//!   client address within [`SIGN_IN_WINDOW`] lock that username for that
//!   address for the rest of the window (counted in the database, so
//!   replicas share the count; per address, so nobody can lock an admin
//!   out from elsewhere). Behind a reverse proxy every client has the
//!   proxy's address, and the count is per username again.

use askama::Template;
use axum::extract::{Form, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use subtle::ConstantTimeEq;

use super::flash::{Notice, notice_cookie};
use super::{AdminError, AdminResult, Chrome, render};
use crate::domain::Role;
use crate::domain::values::required_text;
use crate::engine::credentials::{MAX_USERNAME, random_token};
use crate::engine::sessions::{MAX_SIGN_IN_FAILURES, SESSION_TTL, SIGN_IN_WINDOW};
use crate::http::AppState;
use crate::http::extract::ClientAddr;
use crate::storage::now_micros;

/// Constant-time equality of two secrets (their length is not secret).
pub fn same_secret(a: &str, b: &str) -> bool {
    !a.is_empty() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The session cookie's name for this role.
pub fn session_cookie(role: Role) -> String {
    format!("{}_admin_session", role.as_str())
}

/// The pre-sign-in CSRF cookie's name for this role.
fn login_cookie(role: Role) -> String {
    format!("{}_admin_login", role.as_str())
}

pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

pub(super) fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value; `max_age` 0 deletes the cookie.
fn set_cookie(name: &str, value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let v =
        format!("{name}={value}; Path=/admin; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A signed-in admin. Extracting it is the authentication: without a live
/// session the request is answered with a 303 to the login page.
pub struct AdminUser {
    pub username: String,
    /// This session's CSRF token, for the forms of the page.
    pub csrf: String,
    pub role: Role,
    /// The session id (from the cookie), to keep a failed form on.
    pub(super) session: String,
    /// A failed form kept on the session (see [`super::flash`]).
    pub(super) flash: Option<String>,
    /// The notice this request's cookie names, shown once by the page.
    pub notice: Option<Notice>,
    /// The request came over https: cookies set now are `Secure`.
    pub(super) https: bool,
}

impl AdminUser {
    /// Refuses (403) a form whose `csrf` field is not this session's token.
    pub fn check_csrf(&self, fields: &Fields) -> AdminResult<()> {
        if same_secret(fields.get("csrf").unwrap_or(""), &self.csrf) {
            Ok(())
        } else {
            tracing::warn!(user = %self.username, "admin form refused: bad CSRF token");
            Err(AdminError::Forbidden)
        }
    }

    pub fn actor(&self) -> crate::domain::Actor {
        crate::domain::Actor::Admin(self.username.clone())
    }
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let to_login = || Redirect::to("/admin/login").into_response();
        let role = state.engine.role();
        let Some(id) = cookie(&parts.headers, &session_cookie(role)) else {
            return Err(to_login());
        };
        match state
            .engine
            .admin_session(id)
            .await
            .map_err(|e| AdminError::from(e).into_response())?
        {
            Some(s) => Ok(AdminUser {
                username: s.username,
                csrf: s.csrf_token,
                role,
                session: id.to_owned(),
                flash: s.flash,
                notice: cookie(&parts.headers, &notice_cookie(role)).and_then(Notice::parse),
                https: is_https(&parts.headers),
            }),
            None => Err(to_login()),
        }
    }
}

/// A submitted form as name/value pairs (the order form repeats names with
/// indexes, which a struct cannot describe).
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`, trimmed, or "".
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or("").trim()
    }
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for Fields {
    type Rejection = AdminError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, AdminError> {
        let Form(pairs) = Form::<Vec<(String, String)>>::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    AdminError::BadRequest("The form is too large.".into())
                } else {
                    AdminError::BadRequest(format!("The form could not be read: {}", e.body_text()))
                }
            })?;
        Ok(Fields(pairs))
    }
}

// -- login / logout -----------------------------------------------------------------

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    csrf: String,
    username: String,
    error: Option<String>,
}

/// Renders the login form with its pre-sign-in CSRF token, also set as a
/// cookie. The browser's token is kept when it has one, so that two open
/// login tabs do not invalidate each other.
fn login_form(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    username: &str,
    error: Option<String>,
) -> AdminResult {
    let role = state.engine.role();
    let csrf = cookie(headers, &login_cookie(role))
        .filter(|c| c.len() >= 32)
        .map_or_else(random_token, str::to_owned);
    let page = LoginPage {
        chrome: Chrome::bare(role, "Sign in"),
        csrf: csrf.clone(),
        username: username.to_owned(),
        error,
    };
    let mut res = render(status, &page)?;
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&login_cookie(role), &csrf, 3600, is_https(headers)),
    );
    Ok(res)
}

/// `GET /admin/login`: the form, or the orders when already signed in.
pub async fn login_page(
    State(state): State<AppState>,
    user: Option<AdminUser>,
    headers: HeaderMap,
) -> AdminResult {
    if user.is_some() {
        return Ok(Redirect::to("/admin/orders").into_response());
    }
    login_form(&state, &headers, StatusCode::OK, "", None)
}

impl axum::extract::OptionalFromRequestParts<AppState> for AdminUser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(
            <AdminUser as FromRequestParts<AppState>>::from_request_parts(parts, state)
                .await
                .ok(),
        )
    }
}

/// `POST /admin/login`.
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    fields: Fields,
) -> AdminResult {
    let role = state.engine.role();
    let expected = cookie(&headers, &login_cookie(role)).unwrap_or("");
    if !same_secret(fields.get("csrf").unwrap_or(""), expected) {
        // Refused, but as the form again (a fresh token comes with it):
        // an expired login form is the usual cause, not an attack.
        return login_form(
            &state,
            &headers,
            StatusCode::FORBIDDEN,
            fields.text("username"),
            Some(
                "The sign-in form expired or did not come from this site. Please sign in again."
                    .into(),
            ),
        );
    }
    let username = fields.text("username").to_owned();
    let password = fields.get("password").unwrap_or("").to_owned();
    // A username breaking the rule users are created by (empty, too long,
    // control characters) names no user: asked again, nothing counted.
    if password.is_empty() || required_text("username", &username, MAX_USERNAME).is_err() {
        return login_form(
            &state,
            &headers,
            StatusCode::UNPROCESSABLE_ENTITY,
            &username,
            Some("Enter your username and password.".into()),
        );
    }

    let client = client.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let attempt = state
        .engine
        .count_sign_in_attempt(&username, &client)
        .await?;
    let now = now_micros();
    if attempt.locked() {
        let minutes = ((attempt.window_ends - now).max(0) / 60_000_000) + 1;
        tracing::warn!(%username, %client, "admin sign-in refused: locked out");
        return login_form(
            &state,
            &headers,
            StatusCode::TOO_MANY_REQUESTS,
            &username,
            Some(format!(
                "Too many failed sign-ins for this username from your address. Sign-in is locked; try again in {minutes} minute{}.",
                if minutes == 1 { "" } else { "s" }
            )),
        );
    }
    let ok = state.engine.admin_password_ok(&username, &password).await?;

    if !ok {
        // Already counted, before the password was checked.
        tracing::warn!(%username, %client, "admin sign-in failed");
        let message = if attempt.locks_now() {
            format!(
                "Wrong username or password. After {MAX_SIGN_IN_FAILURES} failed attempts sign-in for this username is locked for {} minutes.",
                SIGN_IN_WINDOW.as_secs() / 60
            )
        } else {
            "Wrong username or password.".to_owned()
        };
        return login_form(
            &state,
            &headers,
            StatusCode::UNAUTHORIZED,
            &username,
            Some(message),
        );
    }

    // A new session id on every sign-in; a session cookie the browser
    // already had (perhaps planted) is ended.
    let id = state
        .engine
        .start_admin_session(&username, &client, cookie(&headers, &session_cookie(role)))
        .await?;
    tracing::info!(%username, "admin signed in");

    let secure = is_https(&headers);
    let mut res = Redirect::to("/admin/orders").into_response();
    let h = res.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(&session_cookie(role), &id, SESSION_TTL.as_secs(), secure),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(&login_cookie(role), "", 0, secure),
    );
    Ok(res)
}

/// `POST /admin/logout`: ends the session (CSRF-checked).
pub async fn logout(
    State(state): State<AppState>,
    user: AdminUser,
    headers: HeaderMap,
    fields: Fields,
) -> AdminResult {
    user.check_csrf(&fields)?;
    let role = state.engine.role();
    if let Some(id) = cookie(&headers, &session_cookie(role)) {
        state.engine.end_admin_session(id).await?;
    }
    tracing::info!(username = %user.username, "admin signed out");
    let mut res = Redirect::to("/admin/login").into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&session_cookie(role), "", 0, is_https(&headers)),
    );
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("", ""));
        assert!(!same_secret("abc", "abcd"));
    }

    #[test]
    fn cookie_flags_and_secure_behind_https() {
        let mut h = HeaderMap::new();
        assert!(!is_https(&h));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(is_https(&h));
        let c = set_cookie("store_admin_session", "abc", 60, true);
        let c = c.to_str().unwrap_or("");
        for part in [
            "HttpOnly",
            "SameSite=Lax",
            "Path=/admin",
            "Max-Age=60",
            "Secure",
        ] {
            assert!(c.contains(part), "{c} lacks {part}");
        }
        let plain = set_cookie("x", "y", 0, false);
        assert!(!plain.to_str().unwrap_or("").contains("Secure"));
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("store_admin_session_x=1; store_admin_session=abc"),
        );
        assert_eq!(cookie(&h, "store_admin_session"), Some("abc"));
        assert_eq!(cookie(&h, "warehouse_admin_session"), None);
    }
}

//! `/admin/tokens`: admin users (listed) and API tokens: create one (shown
//! once, on the answer page only, never stored in clear), list, revoke.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::flash::{self, Flash, Notice};
use super::format;
use super::session::{AdminUser, Fields};
use super::{AdminError, AdminResult, Chrome, render};
use crate::engine::EngineError;
use crate::http::AppState;

pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub created: String,
    pub revoked: Option<String>,
}

pub struct UserRow {
    pub name: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    chrome: Chrome,
    tokens: Vec<TokenRow>,
    users: Vec<UserRow>,
    /// A token just created: shown on this page only.
    new_token: Option<(String, String)>,
    name: String,
    name_error: Option<String>,
    /// Said above the page (a revoke that was refused).
    error: Option<String>,
}

const PATH: &str = "/admin/tokens";

/// What the page shows besides the lists.
#[derive(Default)]
struct Shown {
    new_token: Option<(String, String)>,
    name: String,
    name_error: Option<String>,
    error: Option<String>,
}

async fn render_page(
    state: &AppState,
    user: &AdminUser,
    status: StatusCode,
    shown: Shown,
) -> AdminResult {
    let (tokens, users) = state.engine.tokens_and_users().await?;
    let page = TokensPage {
        chrome: Chrome::new(state.engine.role(), user, "Users and API tokens", "tokens"),
        tokens: tokens
            .into_iter()
            .map(|t| TokenRow {
                id: t.id,
                name: t.name,
                created: format::micros(t.created_at),
                revoked: t.revoked_at.map(format::micros),
            })
            .collect(),
        users: users
            .into_iter()
            .map(|(name, at)| UserRow {
                name,
                created: format::micros(at),
            })
            .collect(),
        new_token: shown.new_token,
        name: shown.name,
        name_error: shown.name_error,
        error: shown.error,
    };
    render(status, &page)
}

/// `GET /admin/tokens`, with the form a failed POST kept.
pub async fn page(State(state): State<AppState>, user: AdminUser) -> AdminResult {
    let (status, shown) = match flash::take(&state, &user, PATH).await? {
        Some(f) => (
            f.status(),
            Shown {
                name: f.value("name").to_owned(),
                name_error: f.errors.get("name").cloned(),
                error: f.error.clone(),
                new_token: None,
            },
        ),
        None => (StatusCode::OK, Shown::default()),
    };
    render_page(&state, &user, status, shown).await
}

/// `POST /admin/tokens`: creates a token and shows it once, on this
/// answer (never kept anywhere to show it after a redirect: see
/// [`super::flash`]); a bad name goes back to the page with the form.
pub async fn create(State(state): State<AppState>, user: AdminUser, fields: Fields) -> AdminResult {
    user.check_csrf(&fields)?;
    let name = fields.text("name").to_owned();
    match state.engine.create_token(&name).await {
        Ok(token) => {
            tracing::info!(user = %user.username, token_name = %name, "API token created in admin");
            let shown = Shown {
                new_token: Some((name, token)),
                ..Default::default()
            };
            render_page(&state, &user, StatusCode::OK, shown).await
        }
        Err(EngineError::Invalid(errs)) => {
            let mut f = Flash::new(StatusCode::UNPROCESSABLE_ENTITY);
            f.values = vec![("name".into(), name)];
            if let Some(e) = errs.into_iter().next() {
                f.errors.insert("name".into(), e.message);
            }
            f.keep(&state, &user, PATH).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/tokens/{id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    user: AdminUser,
    Path(id): Path<String>,
    fields: Fields,
) -> AdminResult {
    user.check_csrf(&fields)?;
    if uuid::Uuid::try_parse(&id).is_err() {
        return Err(AdminError::NotFound);
    }
    if !state.engine.revoke_token(&id).await? {
        let mut f = Flash::new(StatusCode::CONFLICT);
        f.error = Some(
            "That token does not exist or was already revoked; the list below is as it is now."
                .into(),
        );
        return f.keep(&state, &user, PATH).await;
    }
    tracing::info!(user = %user.username, token_id = %id, "API token revoked in admin");
    Ok(flash::see(&user, PATH, Notice::TokenRevoked))
}

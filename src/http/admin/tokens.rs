//! `/admin/tokens`: admin users (listed) and API tokens: create one (shown
//! once, on the answer page only, never stored in clear), list, revoke.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};

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
    notice: Option<&'static str>,
}

async fn render_page(
    state: &AppState,
    user: &AdminUser,
    status: StatusCode,
    new_token: Option<(String, String)>,
    name: String,
    name_error: Option<String>,
    notice: Option<&'static str>,
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
        new_token,
        name,
        name_error,
        notice,
    };
    render(status, &page)
}

#[derive(serde::Deserialize)]
pub struct PageQuery {
    revoked: Option<String>,
}

/// `GET /admin/tokens`.
pub async fn page(
    State(state): State<AppState>,
    user: AdminUser,
    q: Result<axum::extract::Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> AdminResult {
    let notice = q
        .ok()
        .and_then(|q| q.0.revoked)
        .map(|_| "Token revoked: it no longer opens the API.");
    render_page(
        &state,
        &user,
        StatusCode::OK,
        None,
        String::new(),
        None,
        notice,
    )
    .await
}

/// `POST /admin/tokens`: creates a token and shows it once.
pub async fn create(State(state): State<AppState>, user: AdminUser, fields: Fields) -> AdminResult {
    user.check_csrf(&fields)?;
    let name = fields.text("name").to_owned();
    match state.engine.create_token(&name).await {
        Ok(token) => {
            tracing::info!(user = %user.username, token_name = %name, "API token created in admin");
            render_page(
                &state,
                &user,
                StatusCode::OK,
                Some((name, token)),
                String::new(),
                None,
                None,
            )
            .await
        }
        Err(EngineError::Invalid(errs)) => {
            let msg = errs.first().map(|e| e.message.clone());
            render_page(
                &state,
                &user,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                name,
                msg,
                None,
            )
            .await
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
        return Err(AdminError::Conflict(
            "That token does not exist or was already revoked.".into(),
        ));
    }
    tracing::info!(user = %user.username, token_id = %id, "API token revoked in admin");
    Ok(Redirect::to("/admin/tokens?revoked=1").into_response())
}

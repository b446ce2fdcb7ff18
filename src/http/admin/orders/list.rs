//! The order list: search, filters, cursor pages.

use super::*;

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
pub(super) struct ListPage {
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

pub(super) fn status_choices(role: Role, current: &str) -> Vec<Choice> {
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

pub(super) fn sync_choices(current: &str) -> Vec<Choice> {
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
